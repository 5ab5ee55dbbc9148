// Command codecserver serves loanflow's payload codec over HTTP for the
// Temporal Web UI (self-hosted or Temporal Cloud) and the temporal CLI:
// POST …/encode and …/decode per Temporal's codec-server protocol.
//
//	LOANFLOW_CODEC_KEYS=k2:…,k1:… LOANFLOW_CODEC_TOKEN=… \
//	LOANFLOW_CODEC_ORIGINS=https://cloud.temporal.io codecserver -addr :8234
//
// Keys: LOANFLOW_CODEC_KEYS or LOANFLOW_CODEC_KEY_FILE (the same ring the
// workers use). Token: LOANFLOW_CODEC_TOKEN or LOANFLOW_CODEC_TOKEN_FILE.
// CORS: LOANFLOW_CODEC_ORIGINS, the Web UI origins, comma-separated. HTTPS:
// LOANFLOW_CODEC_TLS_CERT and LOANFLOW_CODEC_TLS_KEY (Temporal Cloud's UI
// only calls an https endpoint).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"loanflow/codec"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, os.Args[1:]); err != nil {
		log.Error("codecserver failed", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("codecserver", flag.ContinueOnError)
	addr := fs.String("addr", envOr("LOANFLOW_CODEC_ADDR", "127.0.0.1:8234"), "listen address (env LOANFLOW_CODEC_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ring, _, err := codec.Source{What: "codec keys", EnvVar: codec.EnvCodecKeys, FileVar: codec.EnvCodecKeyFile}.Load(false)
	if err != nil {
		return err
	}
	c, err := codec.New(ring, codec.Options{})
	if err != nil {
		return err
	}
	token, _, err := codec.TokenFromEnv("", false)
	if err != nil {
		return err
	}
	origins := codec.OriginsFromEnv()
	if len(origins) == 0 {
		return fmt.Errorf("%s is unset: name the Web UI origins allowed to call the codec server, e.g. http://localhost:8233 or https://cloud.temporal.io", codec.EnvCodecOrigins)
	}
	cert, key := os.Getenv("LOANFLOW_CODEC_TLS_CERT"), os.Getenv("LOANFLOW_CODEC_TLS_KEY")
	if (cert == "") != (key == "") {
		return errors.New("LOANFLOW_CODEC_TLS_CERT and LOANFLOW_CODEC_TLS_KEY must be set together")
	}
	h, err := codec.NewServer(c, codec.ServerOptions{Token: token, Origins: origins, CookieSecure: cert != ""})
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	go func() {
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("codec server listening", "addr", *addr, "tls", cert != "", "origins", origins, "keys", ring.IDs(), "encrypting_with", ring.CurrentID())
	if cert != "" {
		err = srv.ListenAndServeTLS(cert, key)
	} else {
		err = srv.ListenAndServe()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
