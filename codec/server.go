package codec

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
)

// TokenCookie is the cookie that carries the codec token for browsers: the
// Web UI cannot add an Authorization header of its own, but with its codec
// setting includeCredentials it sends the codec server's cookies.
const TokenCookie = "loanflow_codec_token"

// maxRequestBytes bounds one /encode or /decode request body.
const maxRequestBytes = 8 << 20

// ServerOptions configures the codec server's handler.
type ServerOptions struct {
	// Token authorizes callers: "Authorization: Bearer <token>" or the
	// TokenCookie set by /authorize. Required.
	Token string
	// Origins are the Web UI origins allowed by CORS, e.g.
	// "http://127.0.0.1:8233" or "https://cloud.temporal.io". Requests from
	// other origins get no CORS headers, so browsers refuse their answers.
	Origins []string
	// CookieSecure marks the token cookie Secure (set it behind HTTPS).
	CookieSecure bool
}

// NewServer returns the codec server's handler: POST …/encode and …/decode
// per Temporal's codec-server protocol (only the last path segment counts),
// CORS limited to the configured origins, every call authorized by the
// bearer token. GET /authorize?token=…&next=<ui url> stores the token in a
// cookie and redirects to next (an allowed origin only), so a browser can be
// authorized once for the Web UI; GET /healthz answers without a token.
func NewServer(c *Codec, o ServerOptions) (http.Handler, error) {
	if o.Token == "" {
		return nil, errors.New("codec server: an authorization token is required (LOANFLOW_CODEC_TOKEN or LOANFLOW_CODEC_TOKEN_FILE)")
	}
	o.Origins = slices.Clone(o.Origins)
	for i, origin := range o.Origins {
		u, err := url.Parse(origin)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("codec server origin %q: accepted scheme://host[:port], e.g. http://127.0.0.1:8233", origin)
		}
		o.Origins[i] = u.Scheme + "://" + u.Host
	}
	return &server{codecs: converter.NewPayloadCodecHTTPHandler(c), o: o}, nil
}

type server struct {
	codecs http.Handler
	o      ServerOptions
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	allowed := origin != "" && slices.Contains(s.o.Origins, origin)
	if allowed {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
		h.Set("Access-Control-Max-Age", "600")
		h.Add("Vary", "Origin")
	}
	path := strings.TrimRight(r.URL.Path, "/")
	switch {
	case r.Method == http.MethodOptions:
		// A preflight carries no credentials; the browser sends them next.
		if !allowed {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case path == "/healthz":
		_, _ = w.Write([]byte("ok\n"))
	case path == "/authorize" && r.Method == http.MethodGet:
		s.authorize(w, r)
	case strings.HasSuffix(path, "/encode") || strings.HasSuffix(path, "/decode"):
		if r.Method != http.MethodPost {
			http.Error(w, "accepted method: POST", http.StatusMethodNotAllowed)
			return
		}
		if origin != "" && !allowed {
			http.Error(w, fmt.Sprintf("origin %q is not allowed (set LOANFLOW_CODEC_ORIGINS)", origin), http.StatusForbidden)
			return
		}
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="loanflow codec"`)
			http.Error(w, "unauthorized: send Authorization: Bearer <LOANFLOW_CODEC_TOKEN>, or open /authorize once in this browser", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
		s.codecs.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *server) authorized(r *http.Request) bool {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && s.tokenOK(tok) {
		return true
	}
	if c, err := r.Cookie(TokenCookie); err == nil && s.tokenOK(c.Value) {
		return true
	}
	return false
}

func (s *server) tokenOK(tok string) bool {
	return subtle.ConstantTimeCompare([]byte(tok), []byte(s.o.Token)) == 1
}

func (s *server) authorize(w http.ResponseWriter, r *http.Request) {
	if !s.tokenOK(r.URL.Query().Get("token")) {
		http.Error(w, "unauthorized: wrong or missing token", http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: TokenCookie, Value: s.o.Token, Path: "/", HttpOnly: true, Secure: s.o.CookieSecure,
		// The UI and the codec server are the same site (same host, other
		// port), so a Strict cookie still rides along with the UI's calls.
		SameSite: http.SameSiteStrictMode, Expires: time.Now().Add(12 * time.Hour),
	})
	next := r.URL.Query().Get("next")
	if u, err := url.Parse(next); err == nil && next != "" && slices.Contains(s.o.Origins, u.Scheme+"://"+u.Host) {
		http.Redirect(w, r, next, http.StatusFound)
		return
	}
	_, _ = w.Write([]byte("this browser may now use the codec server\n"))
}

// AuthorizeURL is the link that authorizes a browser and then opens next.
func AuthorizeURL(codecBase, token, next string) string {
	q := url.Values{"token": {token}}
	if next != "" {
		q.Set("next", next)
	}
	return strings.TrimRight(codecBase, "/") + "/authorize?" + q.Encode()
}
