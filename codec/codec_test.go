package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func mustKey(t *testing.T, id string) Key {
	t.Helper()
	k, err := NewKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCodec(t *testing.T, keys ...Key) *Codec {
	t.Helper()
	r, err := NewKeyRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type secret struct {
	CustomerID   string `json:"customer_id"`
	AnnualIncome int64  `json:"annual_income"`
	Notes        string `json:"notes"`
}

func payloadOf(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTripHidesPlaintextAndCompressesLargePayloads(t *testing.T) {
	c := mustCodec(t, mustKey(t, "k1"))
	small := payloadOf(t, secret{CustomerID: "C00012345", AnnualIncome: 58_000_000})
	large := payloadOf(t, secret{CustomerID: "C00012345", AnnualIncome: 58_000_000, Notes: strings.Repeat("debt service schedule ", 200)})
	enc, err := c.Encode([]*commonpb.Payload{small, large})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range enc {
		if got := string(p.Metadata[converter.MetadataEncoding]); got != Encoding {
			t.Errorf("payload %d: encoding %q, want %q", i, got, Encoding)
		}
		if got := string(p.Metadata[MetadataKeyID]); got != "k1" {
			t.Errorf("payload %d: key id %q, want k1", i, got)
		}
		if bytes.Contains(p.Data, []byte("C00012345")) || bytes.Contains(p.Data, []byte("58000000")) {
			t.Errorf("payload %d: plaintext visible in encrypted data", i)
		}
	}
	if _, ok := enc[0].Metadata[MetadataCompression]; ok {
		t.Error("small payload was compressed; below the threshold it should not be")
	}
	if string(enc[1].Metadata[MetadataCompression]) != CompressionZlib {
		t.Error("large repetitive payload was not compressed")
	}
	if len(enc[1].Data) >= len(large.Data) {
		t.Errorf("large payload: %d encrypted bytes, not smaller than %d plaintext", len(enc[1].Data), len(large.Data))
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []*commonpb.Payload{small, large} {
		if !proto.Equal(dec[i], want) {
			t.Errorf("payload %d did not round-trip", i)
		}
	}
	// Two encryptions of one value differ (random nonce).
	again, _ := c.Encode([]*commonpb.Payload{small})
	if bytes.Equal(again[0].Data, enc[0].Data) {
		t.Error("two encryptions of the same payload are identical")
	}
}

func TestDecodePassesThroughUnencryptedPayloads(t *testing.T) {
	c := mustCodec(t, mustKey(t, "k1"))
	plain := payloadOf(t, "from before encryption")
	dec, err := c.Decode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(dec[0], plain) {
		t.Fatal("unencrypted payload altered")
	}
}

// Histories written under key 1 stay readable once key 2 encrypts.
func TestRotationKeepsOldPayloadsReadable(t *testing.T) {
	k1, k2 := mustKey(t, "k1"), mustKey(t, "k2")
	before := mustCodec(t, k1)
	old, err := before.Encode([]*commonpb.Payload{payloadOf(t, secret{CustomerID: "C00000001"})})
	if err != nil {
		t.Fatal(err)
	}
	after := mustCodec(t, k2, k1)
	fresh, err := after.Encode([]*commonpb.Payload{payloadOf(t, secret{CustomerID: "C00000002"})})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(fresh[0].Metadata[MetadataKeyID]); got != "k2" {
		t.Fatalf("after rotation new payloads use key %q, want k2", got)
	}
	dec, err := after.Decode(append(old, fresh...))
	if err != nil {
		t.Fatalf("rotated ring cannot read old payloads: %v", err)
	}
	var a, b secret
	_ = converter.GetDefaultDataConverter().FromPayload(dec[0], &a)
	_ = converter.GetDefaultDataConverter().FromPayload(dec[1], &b)
	if a.CustomerID != "C00000001" || b.CustomerID != "C00000002" {
		t.Fatalf("decoded %q and %q", a.CustomerID, b.CustomerID)
	}
	// Once k1 is retired, its payloads fail with an error naming it.
	retired := mustCodec(t, k2)
	if _, err := retired.Decode(old); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("retired key: got %v, want an unknown-key error naming k1", err)
	}
}

func TestTamperingIsDetected(t *testing.T) {
	k1, k2 := mustKey(t, "k1"), mustKey(t, "k2")
	c := mustCodec(t, k1, k2)
	big := payloadOf(t, secret{Notes: strings.Repeat("x", 1000)})
	enc, err := c.Encode([]*commonpb.Payload{payloadOf(t, secret{CustomerID: "C00000003"}), big})
	if err != nil {
		t.Fatal(err)
	}
	clone := func(p *commonpb.Payload) *commonpb.Payload { return proto.Clone(p).(*commonpb.Payload) }
	cases := map[string]*commonpb.Payload{}
	flipped := clone(enc[0])
	flipped.Data[len(flipped.Data)/2] ^= 1
	cases["flipped ciphertext bit"] = flipped
	truncated := clone(enc[0])
	truncated.Data = truncated.Data[:10]
	cases["truncated"] = truncated
	swapped := clone(enc[0])
	swapped.Metadata[MetadataKeyID] = []byte("k2")
	cases["key id swapped"] = swapped
	uncompressed := clone(enc[1])
	delete(uncompressed.Metadata, MetadataCompression)
	cases["compression flag removed"] = uncompressed
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := c.Decode([]*commonpb.Payload{p})
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("got %v, want ErrTampered", err)
			}
			if !strings.Contains(err.Error(), "key \"k") {
				t.Errorf("error %q does not name the key id", err)
			}
		})
	}
}

func TestUnknownKeyIDErrorNamesIt(t *testing.T) {
	enc, err := mustCodec(t, mustKey(t, "2026-01")).Encode([]*commonpb.Payload{payloadOf(t, "x")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mustCodec(t, mustKey(t, "2026-02")).Decode(enc)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"2026-01"`) {
		t.Fatalf("got %v, want an unknown-key error naming 2026-01", err)
	}
}

func TestParseKeys(t *testing.T) {
	k1, k2 := mustKey(t, "a"), mustKey(t, "b")
	r, err := ParseKeys("# comment\n" + FormatKeys(k1) + "\n" + FormatKeys(k2) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if r.CurrentID() != "a" || len(r.IDs()) != 2 {
		t.Fatalf("ring %v current %s", r.IDs(), r.CurrentID())
	}
	for spec, want := range map[string]string{
		"":                          "no keys",
		"nocolon":                   "accepted id:base64",
		"a:!!!":                     "not base64",
		"a:" + "AAAA":               "accepted exactly 32",
		FormatKeys(k1, k1):          "twice",
		"bad id:" + "AAAA":          "accepted id:base64", // the space splits it
		"b@d:" + FormatKeys(k1)[2:]: "letters, digits",
	} {
		_, err := ParseKeys(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKeys(%q): got %v, want an error containing %q", spec, err, want)
		}
		if err != nil && strings.Contains(err.Error(), FormatKeys(k1)[2:]) {
			t.Errorf("ParseKeys(%q): error echoes the secret", spec)
		}
	}
}

func TestDevKeysAreGeneratedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvCodecKeys, "")
	t.Setenv(EnvCodecKeyFile, "")
	t.Setenv(EnvSearchKeys, "")
	t.Setenv(EnvSearchKeyFile, "")
	if _, _, err := ProtectionFromEnv(dir, false); err == nil || !strings.Contains(err.Error(), EnvCodecKeys) {
		t.Fatalf("without keys and without generation: got %v, want an error naming %s", err, EnvCodecKeys)
	}
	p1, notes, err := ProtectionFromEnv(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "generated") {
		t.Fatalf("notes %q: want two saying the keys were generated", notes)
	}
	st, err := os.Stat(filepath.Join(dir, "codec-keys"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("codec-keys: %v, mode %v; want 0600", err, st)
	}
	p2, _, err := ProtectionFromEnv(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := p1.Codec.Encode([]*commonpb.Payload{payloadOf(t, "x")})
	if _, err := p2.Codec.Decode(enc); err != nil {
		t.Fatalf("second start generated another key: %v", err)
	}
	if p1.Hasher.CustomerRef("C00000001") != p2.Hasher.CustomerRef("C00000001") {
		t.Fatal("second start generated another search key")
	}
	// The environment wins over the dev folder.
	t.Setenv(EnvCodecKeys, FormatKeys(mustKey(t, "prod-1")))
	p3, _, err := ProtectionFromEnv(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if p3.Codec.Ring().CurrentID() != "prod-1" {
		t.Fatalf("current key %s, want prod-1 from %s", p3.Codec.Ring().CurrentID(), EnvCodecKeys)
	}
}

func TestCustomerRef(t *testing.T) {
	s1, s2 := mustKey(t, "s1"), mustKey(t, "s2")
	r1, _ := NewKeyRing(s1)
	h1 := NewHasher(r1)
	ref := h1.CustomerRef("C00012345")
	if strings.Contains(ref, "12345") || !strings.HasPrefix(ref, "s1:") {
		t.Fatalf("ref %q: want the key id and no trace of the customer id", ref)
	}
	if h1.CustomerRef("C00012345") != ref || h1.CustomerRef("C00012346") == ref {
		t.Fatal("ref is not a deterministic function of the customer id")
	}
	r2, _ := NewKeyRing(s2, s1)
	refs := NewHasher(r2).CustomerRefs("C00012345")
	if len(refs) != 2 || refs[1] != ref || refs[0] == ref {
		t.Fatalf("rotated refs %v: want the new key's first and the old ref %s second", refs, ref)
	}
}

func TestServer(t *testing.T) {
	c := mustCodec(t, mustKey(t, "k1"))
	const token = "0123456789abcdef0123"
	const ui = "http://127.0.0.1:8233"
	h, err := NewServer(c, ServerOptions{Token: token, Origins: []string{ui}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	enc, _ := c.Encode([]*commonpb.Payload{payloadOf(t, secret{CustomerID: "C00012345"})})
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	post := func(path, origin string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	if r := post("/decode", ui, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: status %d, want 401", r.StatusCode)
	}
	if r := post("/decode", ui, map[string]string{"Authorization": "Bearer wrong-token-wrong-token"}); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d, want 401", r.StatusCode)
	}
	if r := post("/decode", "https://evil.example", map[string]string{"Authorization": "Bearer " + token}); r.StatusCode != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign origin: status %d, allow-origin %q; want 403 and none", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	r := post("/api/default/decode", ui, map[string]string{"Authorization": "Bearer " + token, "X-Namespace": "default"})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("decode: status %d", r.StatusCode)
	}
	if r.Header.Get("Access-Control-Allow-Origin") != ui || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("CORS headers %v", r.Header)
	}
	var out commonpb.Payloads
	raw := new(bytes.Buffer)
	_, _ = raw.ReadFrom(r.Body)
	if err := protojson.Unmarshal(raw.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	var s secret
	if err := json.Unmarshal(out.Payloads[0].Data, &s); err != nil || s.CustomerID != "C00012345" {
		t.Fatalf("decoded %q (%v)", out.Payloads[0].Data, err)
	}

	// Preflight: allowed origin only, no token needed.
	pre, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	pre.Header.Set("Origin", ui)
	resp, err := http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "X-Namespace") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}

	// /authorize sets the cookie and redirects to the UI; the cookie authorizes.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(AuthorizeURL(srv.URL, token, ui+"/namespaces/default/workflows"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), ui) {
		t.Fatalf("authorize: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == TokenCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly {
		t.Fatalf("authorize set no HttpOnly %s cookie", TokenCookie)
	}
	if r := post("/decode", ui, map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}); r.StatusCode != http.StatusOK {
		t.Errorf("cookie: status %d, want 200", r.StatusCode)
	}
	resp, _ = noFollow.Get(AuthorizeURL(srv.URL, token, "https://evil.example/"))
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusFound {
		t.Error("authorize redirected to a foreign origin")
	}
	if _, err := NewServer(c, ServerOptions{Origins: []string{ui}}); err == nil {
		t.Error("a server without a token was accepted")
	}
}

// BenchmarkEncodeDecode is the codec's cost per payload, for a small
// activity input and for a workflow result the size of a loan.Result.
func BenchmarkEncodeDecode(b *testing.B) {
	k, _ := NewKey("k1")
	r, _ := NewKeyRing(k)
	c, _ := New(r, Options{})
	dc := converter.GetDefaultDataConverter()
	small, _ := dc.ToPayload(map[string]string{"agency": "kcb", "customer_id": "C00012345", "application_id": "20261201T034541-000000"})
	result, _ := dc.ToPayload(map[string]any{
		"application_id": "20261201T034541-000000", "status": "DISBURSED",
		"decision":    map[string]any{"approved": true, "reason": "APPROVED", "combined_score": 952, "dsr_bp": 537, "rate_bp": 500, "approved_amount": 30000000, "monthly_payment": 424018},
		"scores":      []map[string]any{{"agency": "kcb", "score": 965, "report_id": "kcb-bb9eb3142bed16a5"}, {"agency": "nice", "score": 938, "report_id": "nice-711050c97f0c9cab"}},
		"financials":  map[string]any{"source": "mydata", "annual_income": 94918000, "total_debt": 17814200, "annual_debt_service": 3295600, "report_id": "mydata-0a1b2c3d4e5f6a7b"},
		"credit_path": "MYDATA", "disbursement": map[string]any{"loan_id": 1, "amount": 30000000, "monthly_payment": 424018, "disbursed_at": "2026-12-01T03:45:41.88Z"},
	})
	for name, p := range map[string]*commonpb.Payload{"small": small, "result": result} {
		b.Run(fmt.Sprintf("%s-%dB", name, proto.Size(p)), func(b *testing.B) {
			in := []*commonpb.Payload{p}
			for b.Loop() {
				enc, err := c.Encode(in)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
