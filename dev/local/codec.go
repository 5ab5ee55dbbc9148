package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"loanflow/codec"
)

// listenCodec binds the dev codec server's port before the embedded Web UI
// starts, because the UI must be given the codec endpoint; it returns nil
// when no codec server is wanted (no UI and no CodecAddr).
func (s *Stack) listenCodec(cfg *Config) (net.Listener, error) {
	if cfg.UIPort < 0 && cfg.CodecAddr == "" {
		return nil, nil
	}
	if cfg.CodecToken == "" {
		tok, note, err := codec.TokenFromEnv(codec.DefaultDevDir, true)
		if err != nil {
			return nil, err
		}
		if note != "" {
			cfg.Logger.Warn(note)
		}
		cfg.CodecToken = tok
	}
	s.token = cfg.CodecToken
	addr := cfg.CodecAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("codec server: listen on %s: %w", addr, err)
	}
	s.closers = append(s.closers, func() { _ = ln.Close() })
	s.codecURL = "http://" + ln.Addr().String()
	return ln, nil
}

// serveCodec serves the codec server on ln for the embedded Web UI's origin.
func (s *Stack) serveCodec(ln net.Listener, cfg Config) error {
	if ln == nil {
		return nil
	}
	var origins []string
	if s.uiURL != "" {
		origins = append(origins, s.uiURL)
	}
	h, err := codec.NewServer(cfg.Temporal.Protection.Codec, codec.ServerOptions{Token: cfg.CodecToken, Origins: origins})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("codec server stopped", "error", err)
		}
	}()
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	s.log.Info("codec server started", "url", s.codecURL, "origins", origins)
	return nil
}

// CodecAuthorizeURL is the link that authorizes a browser at the dev codec
// server and then opens next (a Web UI page); empty when none runs.
func (s *Stack) CodecAuthorizeURL(next string) string {
	if s.codecURL == "" {
		return ""
	}
	return codec.AuthorizeURL(s.codecURL, s.token, next)
}
