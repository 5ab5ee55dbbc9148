package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clearTemporalEnv unsets every TEMPORAL_* variable for the test, so the
// machine's own settings do not leak in.
func clearTemporalEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TEMPORAL_") {
			t.Setenv(k, "")
			_ = os.Unsetenv(k)
		}
	}
	// No profile file from the user's config dir.
	t.Setenv("TEMPORAL_CONFIG_FILE", filepath.Join(t.TempDir(), "none.toml"))
}

func TestTOMLProfileLoadsAndEnvOverrides(t *testing.T) {
	clearTemporalEnv(t)
	file := filepath.Join(t.TempDir(), "temporal.toml")
	toml := `
[profile.default]
address = "localhost:7233"

[profile.prod]
address = "prod.tmprl.cloud:7233"
namespace = "loans.acct"
api_key = "secret-key"
[profile.prod.tls]
server_name = "prod.tmprl.cloud"
[profile.prod.grpc_meta]
team = "loans"
`
	if err := os.WriteFile(file, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEMPORAL_CONFIG_FILE", file)
	t.Setenv("TEMPORAL_PROFILE", "prod")

	tc, err := TemporalFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if tc.Address != "prod.tmprl.cloud:7233" || tc.Namespace != "loans.acct" {
		t.Fatalf("profile prod: address %q namespace %q", tc.Address, tc.Namespace)
	}
	opts, err := tc.ClientOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Credentials == nil {
		t.Error("api_key of the profile: no credentials")
	}
	if opts.ConnectionOptions.TLS == nil || opts.ConnectionOptions.TLS.ServerName != "prod.tmprl.cloud" {
		t.Errorf("tls of the profile: %+v", opts.ConnectionOptions.TLS)
	}
	if opts.HeadersProvider == nil {
		t.Error("grpc_meta of the profile: no headers provider")
	}

	// Variables win over the file.
	t.Setenv("TEMPORAL_ADDRESS", "10.0.0.1:7233")
	t.Setenv("TEMPORAL_NAMESPACE", "other")
	tc, err = TemporalFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if tc.Address != "10.0.0.1:7233" || tc.Namespace != "other" {
		t.Fatalf("env overrides: address %q namespace %q", tc.Address, tc.Namespace)
	}
	opts, _ = tc.ClientOptions(nil)
	if opts.HostPort != "10.0.0.1:7233" || opts.Namespace != "other" {
		t.Fatalf("client options: %s %s", opts.HostPort, opts.Namespace)
	}

	// A profile that is named but missing is an error naming it.
	t.Setenv("TEMPORAL_PROFILE", "staging")
	if _, err := TemporalFromEnv(); err == nil || !strings.Contains(err.Error(), "staging") {
		t.Fatalf("missing profile: error %v, want one naming staging", err)
	}
}

// An API key turns TLS on by default (Temporal Cloud), but TEMPORAL_TLS=false
// must win: an API key over plaintext to a local proxy or a dev server.
func TestAPIKeyWithTLSFalseHasNoTLS(t *testing.T) {
	clearTemporalEnv(t)
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:7233")
	t.Setenv("TEMPORAL_API_KEY", "k")
	t.Setenv("TEMPORAL_TLS", "false")
	tc, err := TemporalFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := tc.ClientOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts.ConnectionOptions.TLS != nil {
		t.Fatalf("TEMPORAL_TLS=false with an API key: TLS config %+v, want none", opts.ConnectionOptions.TLS)
	}
	if opts.Credentials == nil {
		t.Fatal("the API key was dropped")
	}

	t.Setenv("TEMPORAL_TLS", "")
	_ = os.Unsetenv("TEMPORAL_TLS")
	tc, _ = TemporalFromEnv()
	if opts, _ := tc.ClientOptions(nil); opts.ConnectionOptions.TLS == nil {
		t.Fatal("API key without TEMPORAL_TLS: want TLS on")
	}
}

func TestTLSSettingsRefusedWithTheVariable(t *testing.T) {
	clearTemporalEnv(t)
	t.Setenv("TEMPORAL_TLS", "yes")
	if _, err := TemporalFromEnv(); err == nil || !strings.Contains(err.Error(), `TEMPORAL_TLS="yes"`) {
		t.Fatalf("TEMPORAL_TLS=yes: error %v", err)
	}
	clearTemporalEnv(t)
	t.Setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", "/nonexistent/cert.pem")
	if _, err := TemporalFromEnv(); err == nil || !strings.Contains(err.Error(), "TEMPORAL_TLS") {
		t.Fatalf("cert without key: error %v", err)
	}
}

// Certificates given as PEM in _DATA variables (a mounted secret as an env
// var) load like files do.
func TestCertificateDataVariables(t *testing.T) {
	clearTemporalEnv(t)
	certPEM, keyPEM := selfSigned(t)
	t.Setenv("TEMPORAL_TLS_CLIENT_CERT_DATA", string(certPEM))
	t.Setenv("TEMPORAL_TLS_CLIENT_KEY_DATA", string(keyPEM))
	t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_DATA", string(certPEM))
	tc, err := TemporalFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := tc.ClientOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	tls := opts.ConnectionOptions.TLS
	if tls == nil || len(tls.Certificates) != 1 || tls.RootCAs == nil {
		t.Fatalf("TLS from _DATA variables: %+v", tls)
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loanflow-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
