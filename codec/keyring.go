// Package codec protects loanflow's Temporal payloads: an AES-256-GCM payload
// codec with a key ring (the key id travels in each payload's metadata, so
// keys rotate without breaking old histories), compression before encryption
// where it pays, the codec server the Web UI decodes through, and the keyed
// hash that replaces customer ids in search attributes.
//
// Keys never come from the repository: LOANFLOW_CODEC_KEYS or
// LOANFLOW_CODEC_KEY_FILE hold them, and dev mode generates a local ring
// under .dev/ on first run.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// KeySize is the length of an AES-256 key and of a search-hash key, in bytes.
const KeySize = 32

// Key is one named secret of a ring.
type Key struct {
	ID     string
	Secret []byte
}

// KeyRing holds every key that may still be needed to decrypt, and names the
// one that encrypts (the first of the list it was parsed from).
type KeyRing struct {
	keys    []Key
	byID    map[string]cipher.AEAD
	current string
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// NewKeyRing builds a ring; keys[0] encrypts, the others only decrypt.
func NewKeyRing(keys ...Key) (*KeyRing, error) {
	if len(keys) == 0 {
		return nil, errors.New("key ring: no keys given")
	}
	r := &KeyRing{byID: map[string]cipher.AEAD{}, current: keys[0].ID}
	for _, k := range keys {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, fmt.Errorf("key id %q: accepted 1 to 64 letters, digits, '.', '_' or '-'", k.ID)
		}
		if _, dup := r.byID[k.ID]; dup {
			return nil, fmt.Errorf("key id %q appears twice in the key ring", k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("key %q: %d bytes, accepted exactly %d (AES-256)", k.ID, len(k.Secret), KeySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		r.byID[k.ID] = aead
		r.keys = append(r.keys, Key{ID: k.ID, Secret: slices.Clone(k.Secret)})
	}
	return r, nil
}

// CurrentID is the id of the key that encrypts.
func (r *KeyRing) CurrentID() string { return r.current }

// IDs lists the ring's key ids, the encrypting one first.
func (r *KeyRing) IDs() []string {
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.ID
	}
	return ids
}

// Keys returns copies of the ring's keys, the encrypting one first.
func (r *KeyRing) Keys() []Key {
	out := make([]Key, len(r.keys))
	for i, k := range r.keys {
		out[i] = Key{ID: k.ID, Secret: slices.Clone(k.Secret)}
	}
	return out
}

func (r *KeyRing) aead(id string) (cipher.AEAD, bool) {
	a, ok := r.byID[id]
	return a, ok
}

// ParseKeys reads a ring written as "id:base64,id:base64,...". Commas,
// newlines and blank space separate entries; lines starting with '#' are
// comments, so the same text works in a variable and in a file. The first
// entry encrypts.
func ParseKeys(spec string) (*KeyRing, error) {
	var keys []Key
	for _, line := range strings.Split(spec, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, entry := range strings.FieldsFunc(line, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' || c == '\r' }) {
			id, b64, ok := strings.Cut(entry, ":")
			if !ok {
				return nil, fmt.Errorf("key entry %q: accepted id:base64-of-%d-bytes", redactEntry(entry), KeySize)
			}
			secret, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				if secret, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(b64, "=")); err != nil {
					return nil, fmt.Errorf("key %q: the secret is not base64", id)
				}
			}
			keys = append(keys, Key{ID: id, Secret: secret})
		}
	}
	return NewKeyRing(keys...)
}

// FormatKeys writes a ring in the form ParseKeys reads.
func FormatKeys(keys ...Key) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret)
	}
	return strings.Join(parts, ",")
}

// redactEntry keeps a malformed entry's secret out of error messages.
func redactEntry(s string) string {
	if len(s) > 6 {
		return s[:3] + "…"
	}
	return "…"
}

// NewKey draws a random key with the given id.
func NewKey(id string) (Key, error) {
	k := Key{ID: id, Secret: make([]byte, KeySize)}
	if _, err := rand.Read(k.Secret); err != nil {
		return Key{}, fmt.Errorf("draw key %q: %w", id, err)
	}
	return k, nil
}

// Source says where a ring is read from: an environment variable holding the
// ring, a variable naming a file that holds it, and for dev mode a file that
// is generated when missing.
type Source struct {
	What    string // what the ring is for, in messages: "codec keys", "search key"
	EnvVar  string // e.g. LOANFLOW_CODEC_KEYS
	FileVar string // e.g. LOANFLOW_CODEC_KEY_FILE
	DevFile string // e.g. .dev/codec-keys; empty = no dev fallback
	KeyID   string // id of a generated key
}

// Load reads the ring from the environment, or, when neither variable is set
// and DevFile is not empty, from DevFile, generating it when generate is true
// and the file is missing. The note says where the ring came from, for the
// operator (empty when it came from the environment).
func (s Source) Load(generate bool) (ring *KeyRing, note string, err error) {
	if v := os.Getenv(s.EnvVar); v != "" {
		r, err := ParseKeys(v)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", s.EnvVar, err)
		}
		return r, "", nil
	}
	if p := os.Getenv(s.FileVar); p != "" {
		r, err := readRingFile(p)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", s.FileVar, err)
		}
		return r, "", nil
	}
	if s.DevFile == "" {
		return nil, "", fmt.Errorf("no %s: set %s (id:base64,...) or %s", s.What, s.EnvVar, s.FileVar)
	}
	r, err := readRingFile(s.DevFile)
	switch {
	case err == nil:
		return r, fmt.Sprintf("%s read from %s (dev only; set %s or %s elsewhere)", s.What, s.DevFile, s.EnvVar, s.FileVar), nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, "", err
	case !generate:
		return nil, "", fmt.Errorf("no %s: set %s (id:base64,...) or %s, or run the dev command (go run ./dev/cmd/loanflow-dev) once to generate %s", s.What, s.EnvVar, s.FileVar, s.DevFile)
	}
	k, err := NewKey(s.KeyID)
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(filepath.Dir(s.DevFile), 0o700); err != nil {
		return nil, "", fmt.Errorf("create folder of %s: %w", s.DevFile, err)
	}
	// O_EXCL: two dev processes starting together must not write two rings.
	f, err := os.OpenFile(s.DevFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return s.Load(false)
	}
	if err != nil {
		return nil, "", fmt.Errorf("create %s: %w", s.DevFile, err)
	}
	_, werr := fmt.Fprintf(f, "# loanflow dev %s, generated on first run; never commit it.\n# Format: id:base64 entries, the first one is current.\n%s\n", s.What, FormatKeys(k))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, "", fmt.Errorf("write %s: %w", s.DevFile, werr)
	}
	r, err = NewKeyRing(k)
	if err != nil {
		return nil, "", err
	}
	return r, fmt.Sprintf("generated new dev %s in %s (key id %s); set %s or %s outside dev mode", s.What, s.DevFile, k.ID, s.EnvVar, s.FileVar), nil
}

func readRingFile(path string) (*KeyRing, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	r, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return r, nil
}
