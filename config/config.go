// Package config reads loanflow's settings from the environment and dials
// Temporal. Worker and starter share it, so the variables mean the same thing
// everywhere.
//
// Temporal settings follow the SDK's conventions: TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS,
// TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH,
// TEMPORAL_TLS_SERVER_CA_CERT_PATH and TEMPORAL_TLS_SERVER_NAME.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"loanflow/codec"
)

// Defaults for a developer machine.
const (
	DefaultTemporalAddress = "127.0.0.1:7233"
	DefaultNamespace       = "default"
	DefaultUIURL           = "http://127.0.0.1:8233"
	DefaultDatabaseURL     = "postgres://postgres@127.0.0.1:5432/loanflow?sslmode=disable"
	DefaultRedisURL        = "redis://127.0.0.1:6379/0"
	DefaultAgencyBaseURL   = "http://127.0.0.1:8090"
)

// Temporal holds what is needed to reach a Temporal frontend.
type Temporal struct {
	Address       string // host:port; empty means "embed a dev server" where the caller supports it
	Namespace     string
	UIURL         string // base URL of the Web UI, for links
	APIKey        string
	TLS           bool
	ClientCert    string // path
	ClientKey     string // path
	ServerCA      string // path
	TLSServerName string
	// Protection encrypts every payload and tags applications with
	// CustomerRef; see LoadProtection.
	Protection codec.Protection
}

// LoadProtection reads the codec and search-hash keys (LOANFLOW_CODEC_KEYS or
// LOANFLOW_CODEC_KEY_FILE, LOANFLOW_SEARCH_KEYS or LOANFLOW_SEARCH_KEY_FILE).
// With dev set it falls back to the dev rings under .dev/, generating them
// when generate is true; the notes say where dev keys came from.
func (t *Temporal) LoadProtection(dev, generate bool) (notes []string, err error) {
	dir := ""
	if dev {
		dir = codec.DefaultDevDir
	}
	t.Protection, notes, err = codec.ProtectionFromEnv(dir, generate)
	return notes, err
}

// TemporalFromEnv reads the TEMPORAL_* variables. Address stays empty when
// TEMPORAL_ADDRESS is unset, so callers can tell "not configured" apart.
func TemporalFromEnv() (Temporal, error) {
	t := Temporal{
		Address:       os.Getenv("TEMPORAL_ADDRESS"),
		Namespace:     envOr("TEMPORAL_NAMESPACE", DefaultNamespace),
		UIURL:         envOr("TEMPORAL_UI_URL", DefaultUIURL),
		APIKey:        os.Getenv("TEMPORAL_API_KEY"),
		ClientCert:    os.Getenv("TEMPORAL_TLS_CLIENT_CERT_PATH"),
		ClientKey:     os.Getenv("TEMPORAL_TLS_CLIENT_KEY_PATH"),
		ServerCA:      os.Getenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH"),
		TLSServerName: os.Getenv("TEMPORAL_TLS_SERVER_NAME"),
	}
	if v := os.Getenv("TEMPORAL_TLS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return t, fmt.Errorf("TEMPORAL_TLS=%q: accepted true or false", v)
		}
		t.TLS = b
	}
	if (t.ClientCert == "") != (t.ClientKey == "") {
		return t, fmt.Errorf("TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH must be set together (got cert %q, key %q)", t.ClientCert, t.ClientKey)
	}
	return t, nil
}

// ClientOptions builds SDK client options; address overrides t.Address when set.
func (t Temporal) ClientOptions(logger *slog.Logger) (client.Options, error) {
	addr := t.Address
	if addr == "" {
		addr = DefaultTemporalAddress
	}
	opts := client.Options{HostPort: addr, Namespace: t.Namespace}
	if c := t.Protection.Codec; c != nil {
		opts.DataConverter = c.DataConverter()
		opts.FailureConverter = c.FailureConverter()
	}
	if h := t.Protection.Hasher; h != nil {
		opts.Interceptors = append(opts.Interceptors, h.ClientInterceptor())
	}
	if logger != nil {
		opts.Logger = sdklog.NewStructuredLogger(logger)
	}
	if t.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(t.APIKey)
	}
	if t.TLS || t.ClientCert != "" || t.ServerCA != "" || t.APIKey != "" {
		tc := &tls.Config{ServerName: t.TLSServerName, MinVersion: tls.VersionTLS12}
		if t.ClientCert != "" {
			cert, err := tls.LoadX509KeyPair(t.ClientCert, t.ClientKey)
			if err != nil {
				return opts, fmt.Errorf("load TEMPORAL_TLS_CLIENT_CERT_PATH %q / TEMPORAL_TLS_CLIENT_KEY_PATH %q: %w", t.ClientCert, t.ClientKey, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if t.ServerCA != "" {
			pem, err := os.ReadFile(t.ServerCA)
			if err != nil {
				return opts, fmt.Errorf("read TEMPORAL_TLS_SERVER_CA_CERT_PATH %q: %w", t.ServerCA, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, fmt.Errorf("TEMPORAL_TLS_SERVER_CA_CERT_PATH %q holds no PEM certificate", t.ServerCA)
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tc
	}
	return opts, nil
}

// Dial connects to Temporal and checks the connection.
func (t Temporal) Dial(logger *slog.Logger) (client.Client, error) {
	opts, err := t.ClientOptions(logger)
	if err != nil {
		return nil, err
	}
	return DialOptions(opts)
}

// DialOptions connects with options built by ClientOptions (and perhaps
// extended), with an error that says which server and variable to check.
func DialOptions(opts client.Options) (client.Client, error) {
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s; set TEMPORAL_ADDRESS): %w", opts.HostPort, opts.Namespace, err)
	}
	return c, nil
}

// WorkflowURL is the Web UI page of one workflow execution.
func (t Temporal) WorkflowURL(workflowID, runID string) string {
	return WorkflowURL(t.UIURL, t.Namespace, workflowID, runID)
}

// WorkflowURL builds the Web UI link of a run for any UI base address.
func WorkflowURL(uiBase, namespace, workflowID, runID string) string {
	u := fmt.Sprintf("%s/namespaces/%s/workflows/%s", strings.TrimRight(uiBase, "/"), namespace, workflowID)
	if runID == "" {
		// The UI would read "history" as a run id (400); without one it
		// opens the latest run.
		return u
	}
	return u + "/" + runID + "/history"
}

// ListURL is the Web UI's workflow list filtered by a visibility query.
func ListURL(uiBase, namespace, query string) string {
	u := fmt.Sprintf("%s/namespaces/%s/workflows", strings.TrimRight(uiBase, "/"), namespace)
	if query != "" {
		u += "?query=" + url.QueryEscape(query)
	}
	return u
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// EnvOr returns the variable's value, or def when it is unset or empty.
func EnvOr(key, def string) string { return envOr(key, def) }
