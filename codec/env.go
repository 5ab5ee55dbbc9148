package codec

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables that hold the secrets, and the files dev mode keeps
// under its folder when they are unset.
const (
	EnvCodecKeys      = "LOANFLOW_CODEC_KEYS"
	EnvCodecKeyFile   = "LOANFLOW_CODEC_KEY_FILE"
	EnvSearchKeys     = "LOANFLOW_SEARCH_KEYS"
	EnvSearchKeyFile  = "LOANFLOW_SEARCH_KEY_FILE"
	EnvCodecToken     = "LOANFLOW_CODEC_TOKEN"
	EnvCodecTokenFile = "LOANFLOW_CODEC_TOKEN_FILE"
	EnvCodecOrigins   = "LOANFLOW_CODEC_ORIGINS"

	// DefaultDevDir is where dev mode keeps its generated secrets.
	DefaultDevDir = ".dev"
)

// Protection is what every Temporal client of loanflow needs: the payload
// codec, and the hasher that tags applications with CustomerRef.
type Protection struct {
	Codec  *Codec
	Hasher *Hasher
}

// NewProtection builds a Protection from explicit rings (tests, tools).
func NewProtection(codecKeys, searchKeys *KeyRing) (Protection, error) {
	c, err := New(codecKeys, Options{})
	if err != nil {
		return Protection{}, err
	}
	return Protection{Codec: c, Hasher: NewHasher(searchKeys)}, nil
}

// ProtectionFromEnv reads the codec ring (LOANFLOW_CODEC_KEYS or
// LOANFLOW_CODEC_KEY_FILE) and the search-hash ring (LOANFLOW_SEARCH_KEYS or
// LOANFLOW_SEARCH_KEY_FILE). When they are unset and devDir is not empty, the
// rings in devDir are used, and generated there first when generate is true.
// The notes say where dev rings came from, for the operator to see.
func ProtectionFromEnv(devDir string, generate bool) (Protection, []string, error) {
	var notes []string
	load := func(s Source) (*KeyRing, error) {
		if devDir == "" {
			s.DevFile = ""
		}
		r, note, err := s.Load(generate)
		if note != "" {
			notes = append(notes, note)
		}
		return r, err
	}
	ck, err := load(Source{What: "codec keys", EnvVar: EnvCodecKeys, FileVar: EnvCodecKeyFile,
		DevFile: filepath.Join(devDir, "codec-keys"), KeyID: "dev-1"})
	if err != nil {
		return Protection{}, notes, err
	}
	sk, err := load(Source{What: "search key", EnvVar: EnvSearchKeys, FileVar: EnvSearchKeyFile,
		DevFile: filepath.Join(devDir, "search-keys"), KeyID: "dev-s1"})
	if err != nil {
		return Protection{}, notes, err
	}
	p, err := NewProtection(ck, sk)
	return p, notes, err
}

// TokenFromEnv reads the codec server's token from LOANFLOW_CODEC_TOKEN or
// the file named by LOANFLOW_CODEC_TOKEN_FILE; failing those, from devDir's
// codec-token, generated when generate is true.
func TokenFromEnv(devDir string, generate bool) (token, note string, err error) {
	if v := os.Getenv(EnvCodecToken); v != "" {
		return checkToken(EnvCodecToken, v)
	}
	if p := os.Getenv(EnvCodecTokenFile); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", EnvCodecTokenFile, err)
		}
		return checkToken(EnvCodecTokenFile+" "+p, strings.TrimSpace(string(b)))
	}
	if devDir == "" {
		return "", "", fmt.Errorf("no codec server token: set %s or %s", EnvCodecToken, EnvCodecTokenFile)
	}
	path := filepath.Join(devDir, "codec-token")
	b, err := os.ReadFile(path)
	if err == nil {
		t, _, err := checkToken(path, strings.TrimSpace(string(b)))
		return t, "", err
	}
	if !errors.Is(err, os.ErrNotExist) || !generate {
		return "", "", fmt.Errorf("no codec server token: set %s or %s (%w)", EnvCodecToken, EnvCodecTokenFile, err)
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", fmt.Errorf("draw codec token: %w", err)
	}
	token = hex.EncodeToString(raw[:])
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		return "", "", fmt.Errorf("create %s: %w", devDir, err)
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("write %s: %w", path, err)
	}
	return token, "generated a dev codec server token in " + path, nil
}

func checkToken(from, t string) (string, string, error) {
	if len(t) < 16 {
		return "", "", fmt.Errorf("%s: the codec token has %d characters, accepted 16 or more", from, len(t))
	}
	return t, "", nil
}

// OriginsFromEnv reads LOANFLOW_CODEC_ORIGINS (comma-separated), or returns def.
func OriginsFromEnv(def ...string) []string {
	v := os.Getenv(EnvCodecOrigins)
	if v == "" {
		return def
	}
	var out []string
	for _, o := range strings.Split(v, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}
