package breaker

import (
	"context"
	"testing"
	"time"

	"loanflow/internal/testenv"
)

// A published record is a lease: it expires with its key. A reader bridges a
// missing record with the last one it read, for the hold only, and then
// applies the fail-safe rule; a reader that never saw one applies it at once.
func TestLeaseExpiresAndReaderHoldsThenFailsSafe(t *testing.T) {
	testenv.Short(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	s := NewStore(rdb, prefix)
	names := []string{"kcb", "mydata", "scraping", Entry}

	fresh := NewReader(s, time.Minute, nil)
	for n, st := range fresh.Read(ctx, names) {
		if st.State != FailSafe(n) || st.Held != "fail-safe" {
			t.Errorf("nothing published: %s reads %s (%q), want fail-safe %s", n, st.State, st.Held, FailSafe(n))
		}
	}
	if FailSafe("mydata") != Open || FailSafe("kcb") != Open || FailSafe(Entry) != Open || FailSafe("scraping") != Closed {
		t.Fatal("fail-safe rule changed without this test")
	}

	open := Status{Name: "mydata", State: Open, Machine: Open, Reason: "operator: maintenance"}
	closed := Status{Name: "kcb", State: Closed, Machine: Closed}
	if err := s.Write(ctx, []Status{open, closed}, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1_700_000_000, 0)
	r := NewReader(s, 10*time.Second, nil)
	r.now = func() time.Time { return clock }
	got := r.Read(ctx, []string{"mydata", "kcb"})
	if got["mydata"].State != Open || got["mydata"].Held != "" || got["kcb"].State != Closed {
		t.Fatalf("live records read %+v", got)
	}

	time.Sleep(500 * time.Millisecond) // the lease ends: the keys are gone
	if live, err := s.Read(ctx, []string{"mydata", "kcb"}); err != nil || len(live) != 0 {
		t.Fatalf("records outlived their lease: %v %v", live, err)
	}
	clock = clock.Add(5 * time.Second)
	got = r.Read(ctx, []string{"mydata", "kcb"})
	if got["mydata"].State != Open || got["kcb"].State != Closed || got["kcb"].Held == "" {
		t.Fatalf("within the hold the reader must answer the last records, got %+v", got)
	}
	clock = clock.Add(6 * time.Second)
	got = r.Read(ctx, []string{"mydata", "kcb"})
	if got["mydata"].State != Open || got["kcb"].State != Open || got["kcb"].Held != "fail-safe" {
		t.Fatalf("past the hold the reader must fail safe (mydata open, kcb open), got %+v", got)
	}
}
