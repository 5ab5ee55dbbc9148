// Package config reads loanflow's Temporal client settings and dials
// Temporal. Worker, starter and the dev stack share it, so the settings mean
// the same thing everywhere.
//
// The client settings follow the SDK's envconfig convention
// (go.temporal.io/sdk/contrib/envconfig): a TOML file (TEMPORAL_CONFIG_FILE,
// default the user's config dir's temporalio/temporal.toml) with profiles
// (TEMPORAL_PROFILE, default "default"), overridden by TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS,
// TEMPORAL_TLS_CLIENT_CERT_PATH or _DATA, TEMPORAL_TLS_CLIENT_KEY_PATH or
// _DATA, TEMPORAL_TLS_SERVER_CA_CERT_PATH or _DATA, TEMPORAL_TLS_SERVER_NAME,
// TEMPORAL_TLS_DISABLE_HOST_VERIFICATION, TEMPORAL_CLIENT_AUTHORITY and
// TEMPORAL_GRPC_META_*. Payloads are always encrypted locally by loanflow's
// codec; a remote codec endpoint in the profile is not used.
package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
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
	Address   string // host:port; empty means "not configured" (the dev stack then embeds a server)
	Namespace string
	UIURL     string // base URL of the Web UI, for links
	// Profile is the envconfig profile the settings came from: API key, TLS,
	// gRPC metadata and authority. Address and Namespace above win over its own.
	Profile envconfig.ClientConfigProfile
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

// TemporalFromEnv loads the envconfig profile (file, then TEMPORAL_*
// variables) and TEMPORAL_UI_URL. Address stays empty when neither sets it,
// so callers can tell "not configured" apart.
func TemporalFromEnv() (Temporal, error) {
	// envconfig ignores a TEMPORAL_TLS it cannot read; a typo must not
	// silently change the transport.
	for _, k := range []string{"TEMPORAL_TLS", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"} {
		if v, ok := os.LookupEnv(k); ok {
			switch strings.ToLower(v) {
			case "1", "0", "true", "false":
			default:
				return Temporal{}, fmt.Errorf("%s=%q: accepted true, false, 1 or 0", k, v)
			}
		}
	}
	prof, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{})
	if err != nil {
		return Temporal{}, fmt.Errorf("temporal client configuration (TEMPORAL_CONFIG_FILE %q, TEMPORAL_PROFILE %q): %w",
			os.Getenv("TEMPORAL_CONFIG_FILE"), os.Getenv("TEMPORAL_PROFILE"), err)
	}
	t := Temporal{
		Address:   prof.Address,
		Namespace: prof.Namespace,
		UIURL:     envOr("TEMPORAL_UI_URL", DefaultUIURL),
		Profile:   prof,
	}
	if t.Namespace == "" {
		t.Namespace = DefaultNamespace
	}
	// Checks the TLS settings (paths and PEM data) now, not at dial time.
	if _, err := t.ClientOptions(nil); err != nil {
		return t, err
	}
	return t, nil
}

// ClientOptions builds SDK client options from the profile, with loanflow's
// codec, CustomerRef interceptor and logger.
func (t Temporal) ClientOptions(logger *slog.Logger) (client.Options, error) {
	p := t.Profile
	p.Address, p.Namespace = t.Address, t.Namespace
	if p.Address == "" {
		p.Address = DefaultTemporalAddress
	}
	if p.Namespace == "" {
		p.Namespace = DefaultNamespace
	}
	// The payloads are encrypted here; a remote codec would see them in
	// plaintext and be called on every replay.
	p.Codec = nil
	opts, err := p.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return opts, fmt.Errorf("temporal TLS settings (TEMPORAL_TLS_* or the profile's tls table): %w", err)
	}
	if c := t.Protection.Codec; c != nil {
		opts.DataConverter = c.DataConverter()
		opts.FailureConverter = c.FailureConverter()
	}
	if h := t.Protection.Hasher; h != nil {
		opts.Interceptors = append(opts.Interceptors, h.ClientInterceptor())
	}
	if logger != nil {
		opts.Logger = sdklog.NewStructuredLogger(SDKLogger(logger))
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
