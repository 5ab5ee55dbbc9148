package local_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"loanflow/codec"
	"loanflow/dev/loadgen"
	"loanflow/dev/local"
	"loanflow/internal/testenv"
	"loanflow/loan"
	"loanflow/workflows"
)

const testCodecToken = "test-codec-token-0123456789"

func testKey(t *testing.T, id string) codec.Key {
	t.Helper()
	k, err := codec.NewKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testRing(t *testing.T, keys ...codec.Key) *codec.KeyRing {
	t.Helper()
	r, err := codec.NewKeyRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testProtection is a fresh codec and search key for one test's stack.
func testProtection(t *testing.T) codec.Protection {
	t.Helper()
	p, err := codec.NewProtection(testRing(t, testKey(t, "test-1")), testRing(t, testKey(t, "test-s1")))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// What Temporal stores is ciphertext and attributes without personal data:
// a client without the codec sees no customer id, income, debt, score or
// amount anywhere in the histories or search attributes; the codec server
// decodes the same history for an authorized caller; and after a key
// rotation the old histories still read.
func TestTemporalHoldsNoPlaintextPersonalData(t *testing.T) {
	k1 := testKey(t, "k1")
	search := testRing(t, testKey(t, "s1"))
	logs := &lockedBuffer{}
	env := startDevWith(t, func(c *local.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		p, err := codec.NewProtection(testRing(t, k1), search)
		if err != nil {
			t.Fatal(err)
		}
		c.Temporal.Protection = p
		c.CodecAddr = "127.0.0.1:0"
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := loadgen.Run(ctx, env.Client, loadgen.Options{Count: 4, Rate: 50, RunID: "pii-" + testenv.ID(), Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	if err := sum.FirstError(); err != nil {
		t.Fatal(err)
	}

	raw, err := client.Dial(client.Options{HostPort: env.Config.Temporal.Address, Namespace: env.Config.Temporal.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	hasher := codec.NewHasher(search)
	var encrypted []*commonpb.Payload
	for _, o := range sum.Outcomes {
		res := o.Result
		if res.Financials == nil || len(res.Scores) != 2 {
			t.Fatalf("%s: no credit data in the result (%s %s); the test needs some", res.ApplicationID, res.Status, res.Error)
		}
		app := applicationOf(t, env, o.WorkflowID)
		secrets := map[string]string{
			"customer id":         app.CustomerID,
			"requested amount":    strconv.FormatInt(app.Amount, 10),
			"annual income":       strconv.FormatInt(res.Financials.AnnualIncome, 10),
			"total debt":          strconv.FormatInt(res.Financials.TotalDebt, 10),
			"annual debt service": strconv.FormatInt(res.Financials.AnnualDebtService, 10),
		}
		for what, v := range secrets {
			if len(v) < 5 {
				delete(secrets, what) // 0 (no debt) and the like occur everywhere
			}
		}
		for _, s := range res.Scores {
			// A 3-digit number could occur in ciphertext by chance; the
			// plaintext would carry its JSON field.
			secrets[s.Agency+" score"] = fmt.Sprintf(`"score":%d`, s.Score)
		}

		// Nor do the logs of the worker, the SDK and the agencies.
		logText := logs.String()
		for what, v := range secrets {
			if strings.Contains(logText, v) {
				line := logText[strings.LastIndex(logText[:strings.Index(logText, v)], "\n")+1:]
				line, _, _ = strings.Cut(line, "\n")
				t.Errorf("a log line holds the %s %s: %s", what, v, line)
			}
		}

		events := history(t, ctx, raw, o.WorkflowID)
		for _, ev := range events {
			b, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			for what, v := range secrets {
				if bytes.Contains(b, []byte(v)) {
					t.Errorf("%s event %d (%s) holds the %s %s in plaintext", o.WorkflowID, ev.EventId, ev.EventType, what, v)
				}
			}
			for _, p := range payloadsOf(ev, false) {
				if enc := string(p.Metadata[converter.MetadataEncoding]); enc != codec.Encoding {
					t.Errorf("%s event %d (%s): a payload with encoding %q, want %q", o.WorkflowID, ev.EventId, ev.EventType, enc, codec.Encoding)
				}
				encrypted = append(encrypted, p)
			}
		}

		desc, err := raw.DescribeWorkflowExecution(ctx, o.WorkflowID, "")
		if err != nil {
			t.Fatal(err)
		}
		sa := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
		for _, gone := range []string{"CustomerId", "RequestedAmount"} {
			if _, ok := sa[gone]; ok {
				t.Errorf("%s: search attribute %s is still set", o.WorkflowID, gone)
			}
		}
		if got := keyword(t, sa[workflows.CustomerRefKey.GetName()]); got != hasher.CustomerRef(app.CustomerID) {
			t.Errorf("%s: CustomerRef %q, want the keyed hash of the customer id", o.WorkflowID, got)
		}
		if got, want := keyword(t, sa[workflows.AmountBandKey.GetName()]), workflows.AmountBand(app.Amount); got != want {
			t.Errorf("%s: AmountBand %q, want %q", o.WorkflowID, got, want)
		}
	}
	if len(encrypted) < 10 {
		t.Fatalf("only %d payloads found in the histories", len(encrypted))
	}

	// An operator finds a customer's runs by the hash (what starter find does).
	first := sum.Outcomes[0]
	cust := applicationOf(t, env, first.WorkflowID).CustomerID
	// As after a rotation: any of the refs under the ring's keys.
	query := fmt.Sprintf("%s IN (%q, %q)", workflows.CustomerRefKey.GetName(), "s0:00000000000000000000000000000000", hasher.CustomerRef(cust))
	found := false
	for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := raw.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: env.Config.Temporal.Namespace, Query: query})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Executions {
			found = found || e.GetExecution().GetWorkflowId() == first.WorkflowID
		}
	}
	if !found {
		t.Errorf("query %s did not find %s", query, first.WorkflowID)
	}

	// The codec server decodes the same payloads, for the token holder only.
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: encrypted})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := postCodec(t, env.CodecURL+"/decode", body, ""); code != http.StatusUnauthorized {
		t.Errorf("codec server without a token: status %d, want 401", code)
	}
	code, out := postCodec(t, env.CodecURL+"/decode", body, testCodecToken)
	if code != http.StatusOK {
		t.Fatalf("codec server: status %d: %s", code, out)
	}
	var decoded commonpb.Payloads
	if err := protojson.Unmarshal(out, &decoded); err != nil {
		t.Fatal(err)
	}
	if len(decoded.Payloads) != len(encrypted) {
		t.Fatalf("codec server returned %d payloads for %d", len(decoded.Payloads), len(encrypted))
	}
	var plain bytes.Buffer
	for _, p := range decoded.Payloads {
		if string(p.Metadata[converter.MetadataEncoding]) == codec.Encoding {
			t.Fatal("codec server left a payload encrypted")
		}
		plain.Write(p.Data)
	}
	if r := first.Result; !bytes.Contains(plain.Bytes(), []byte(cust)) ||
		!bytes.Contains(plain.Bytes(), []byte(strconv.FormatInt(r.Financials.AnnualIncome, 10))) {
		t.Error("decoded payloads do not hold the customer id and income they were written with")
	}

	// Rotation: a client whose ring encrypts with k2 still reads runs
	// written under k1 (results, and a status query the k1 worker answers).
	rotated, err := codec.NewProtection(testRing(t, testKey(t, "k2"), k1), search)
	if err != nil {
		t.Fatal(err)
	}
	tc := env.Config.Temporal
	tc.Protection = rotated
	c2, err := tc.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var res loan.Result
	if err := c2.GetWorkflow(ctx, first.WorkflowID, "").Get(ctx, &res); err != nil {
		t.Fatalf("rotated client cannot read a k1 result: %v", err)
	}
	if res.Financials == nil || *res.Financials != *first.Result.Financials {
		t.Fatalf("rotated client read %+v, want %+v", res.Financials, first.Result.Financials)
	}
	v, err := c2.QueryWorkflow(ctx, first.WorkflowID, "", workflows.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Get(&res); err != nil || res.Status != first.Result.Status {
		t.Fatalf("status query through the rotated client: %v, status %s want %s", err, res.Status, first.Result.Status)
	}
	// A client without k1 gets an error naming it, not a panic.
	tc.Protection, _ = codec.NewProtection(testRing(t, testKey(t, "k3")), search)
	c3, err := tc.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := c3.GetWorkflow(ctx, first.WorkflowID, "").Get(ctx, &res); err == nil || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("client without k1: got %v, want an error naming key k1", err)
	}
}

func applicationOf(t *testing.T, env *local.Observer, workflowID string) loan.Application {
	t.Helper()
	rec, err := env.Store.GetApplication(context.Background(), applicationIDOf(t, workflowID))
	if err != nil {
		t.Fatal(err)
	}
	return rec.Application
}

func history(t *testing.T, ctx context.Context, c client.Client, id string) []*historypb.HistoryEvent {
	t.Helper()
	var events []*historypb.HistoryEvent
	iter := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	return events
}

// payloadsOf collects every Payload in m, skipping search attributes (which
// no codec covers; they are checked for personal data separately).
func payloadsOf(m proto.Message, inSearch bool) []*commonpb.Payload {
	if p, ok := m.(*commonpb.Payload); ok {
		if inSearch {
			return nil
		}
		return []*commonpb.Payload{p}
	}
	if _, ok := m.(*commonpb.SearchAttributes); ok {
		return nil
	}
	var out []*commonpb.Payload
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				out = append(out, payloadsOf(v.List().Get(i).Message().Interface(), inSearch)...)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					out = append(out, payloadsOf(mv.Message().Interface(), inSearch)...)
					return true
				})
			}
		default:
			out = append(out, payloadsOf(v.Message().Interface(), inSearch)...)
		}
		return true
	})
	return out
}

func keyword(t *testing.T, p *commonpb.Payload) string {
	t.Helper()
	if p == nil {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func postCodec(t *testing.T, url string, body []byte, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func applicationIDOf(t *testing.T, workflowID string) string {
	t.Helper()
	id, ok := workflows.ApplicationID(workflowID)
	if !ok {
		t.Fatalf("%s is not a loan workflow id", workflowID)
	}
	return id
}
