package codec

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload. The encoding tells every codec (and the
// Web UI) that the data is opaque; the key id says which key of the ring
// opens it; the compression says what to undo after decryption.
const (
	Encoding            = "binary/encrypted"
	MetadataKeyID       = "encryption-key-id"
	MetadataCompression = "loanflow-compression"
	CompressionZlib     = "zlib"
)

// DefaultCompressThreshold is the serialized size from which compression is
// tried: below it zlib's header and checksum cost more than they save.
const DefaultCompressThreshold = 256

// maxDecodedSize bounds what one payload may inflate to, so a forged
// compressed payload cannot exhaust memory.
const maxDecodedSize = 16 << 20

// ErrUnknownKey is returned when a payload names a key the ring lacks.
var ErrUnknownKey = errors.New("unknown key id")

// ErrTampered is returned when a payload fails authentication: it was
// altered, or it was sealed with a different key under the same id.
var ErrTampered = errors.New("payload failed authentication")

// Codec is an AES-256-GCM converter.PayloadCodec. Each payload is serialized
// whole (metadata and data), compressed when that makes it smaller, and sealed
// with the ring's current key; the key id and the compression are bound into
// the ciphertext as additional data, so neither can be swapped unnoticed.
type Codec struct {
	ring      *KeyRing
	threshold int
}

// Options tunes a Codec; the zero value means the defaults.
type Options struct {
	// CompressThreshold is the size (bytes) from which compression is tried;
	// 0 means DefaultCompressThreshold, negative disables compression.
	CompressThreshold int
}

// New returns a codec that encrypts with ring's current key and decrypts with any of its keys.
func New(ring *KeyRing, o Options) (*Codec, error) {
	if ring == nil {
		return nil, errors.New("codec: no key ring")
	}
	if o.CompressThreshold == 0 {
		o.CompressThreshold = DefaultCompressThreshold
	}
	return &Codec{ring: ring, threshold: o.CompressThreshold}, nil
}

// Ring is the codec's key ring.
func (c *Codec) Ring() *KeyRing { return c.ring }

// Encode implements converter.PayloadCodec.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	keyID := c.ring.CurrentID()
	aead, _ := c.ring.aead(keyID)
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("encrypt payload: serialize: %w", err)
		}
		compression := ""
		if c.threshold > 0 && len(plain) >= c.threshold {
			if z, ok := deflate(plain); ok {
				plain, compression = z, CompressionZlib
			}
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("encrypt payload: draw nonce: %w", err)
		}
		md := map[string][]byte{
			converter.MetadataEncoding: []byte(Encoding),
			MetadataKeyID:              []byte(keyID),
		}
		if compression != "" {
			md[MetadataCompression] = []byte(compression)
		}
		out[i] = &commonpb.Payload{Metadata: md, Data: aead.Seal(nonce, nonce, plain, additionalData(keyID, compression))}
	}
	return out, nil
}

// Decode implements converter.PayloadCodec. Payloads it did not encrypt
// (histories from before encryption) pass through unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		d, err := c.decodeOne(p)
		if err != nil {
			return payloads, err
		}
		out[i] = d
	}
	return out, nil
}

func (c *Codec) decodeOne(p *commonpb.Payload) (*commonpb.Payload, error) {
	keyID := string(p.Metadata[MetadataKeyID])
	compression := string(p.Metadata[MetadataCompression])
	aead, ok := c.ring.aead(keyID)
	if !ok {
		return nil, fmt.Errorf("decrypt payload: key id %q: %w (the ring holds %v; add the key to LOANFLOW_CODEC_KEYS or LOANFLOW_CODEC_KEY_FILE)", keyID, ErrUnknownKey, c.ring.IDs())
	}
	if compression != "" && compression != CompressionZlib {
		return nil, fmt.Errorf("decrypt payload with key %q: compression %q: accepted %q or none", keyID, compression, CompressionZlib)
	}
	ns := aead.NonceSize()
	if len(p.Data) < ns+aead.Overhead() {
		return nil, fmt.Errorf("decrypt payload with key %q: %d bytes is shorter than a nonce and tag: %w", keyID, len(p.Data), ErrTampered)
	}
	plain, err := aead.Open(nil, p.Data[:ns], p.Data[ns:], additionalData(keyID, compression))
	if err != nil {
		return nil, fmt.Errorf("decrypt payload with key %q: %w (altered, or sealed with another key of that id)", keyID, ErrTampered)
	}
	if compression == CompressionZlib {
		if plain, err = inflate(plain); err != nil {
			return nil, fmt.Errorf("decrypt payload with key %q: decompress: %w", keyID, err)
		}
	}
	var out commonpb.Payload
	if err := proto.Unmarshal(plain, &out); err != nil {
		return nil, fmt.Errorf("decrypt payload with key %q: deserialize: %w", keyID, err)
	}
	return &out, nil
}

func additionalData(keyID, compression string) []byte {
	return []byte("loanflow/v1\x00" + keyID + "\x00" + compression)
}

// zlibWriters are reused: a new zlib writer allocates about 800 KB of
// compressor state, far more than the payloads it compresses.
var zlibWriters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed)
	return w
}}

// deflate compresses b and reports whether that made it smaller.
func deflate(b []byte) ([]byte, bool) {
	var buf bytes.Buffer
	buf.Grow(len(b))
	w := zlibWriters.Get().(*zlib.Writer)
	defer zlibWriters.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(b); err != nil {
		return nil, false
	}
	if err := w.Close(); err != nil {
		return nil, false
	}
	if buf.Len() >= len(b) {
		return nil, false
	}
	return buf.Bytes(), true
}

// zlibReaders are reused for the same reason as zlibWriters.
var zlibReaders sync.Pool

func inflate(b []byte) ([]byte, error) {
	var r io.ReadCloser
	if pooled, ok := zlibReaders.Get().(io.ReadCloser); ok {
		if err := pooled.(zlib.Resetter).Reset(bytes.NewReader(b), nil); err != nil {
			return nil, err
		}
		r = pooled
	} else {
		var err error
		if r, err = zlib.NewReader(bytes.NewReader(b)); err != nil {
			return nil, err
		}
	}
	defer zlibReaders.Put(r)
	out, err := io.ReadAll(io.LimitReader(r, maxDecodedSize+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxDecodedSize {
		return nil, fmt.Errorf("inflates past %d bytes", maxDecodedSize)
	}
	return out, nil
}

// DataConverter wraps the SDK's default converter with the codec.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter encrypts failure messages and stack traces too: an error
// can quote what an agency answered.
func (c *Codec) FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          c.DataConverter(),
		EncodeCommonAttributes: true,
	})
}

// Ephemeral is a codec with a random key that lives only in this process:
// for throwaway stacks (benchmarks) whose histories die with them.
func Ephemeral() (*Codec, error) {
	k, err := NewKey("ephemeral")
	if err != nil {
		return nil, err
	}
	r, err := NewKeyRing(k)
	if err != nil {
		return nil, err
	}
	return New(r, Options{})
}
