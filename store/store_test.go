package store_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"loanflow/internal/testenv"
	"loanflow/loan"
	"loanflow/migrations"
	"loanflow/store"
)

func open(t *testing.T) (context.Context, *store.Store) {
	t.Helper()
	testenv.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	url := testenv.Postgres(t)
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("migrations.Up: %v", err)
	}
	s, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(s.Close)
	return ctx, s
}

func application(id string) loan.Application {
	return loan.Application{ApplicationID: id, CustomerID: "C00012345", Amount: 30_000_000, TermMonths: 36}
}

func approved(id string) loan.Result {
	return loan.Result{
		ApplicationID: id,
		Status:        loan.StatusApproved,
		Decision: &loan.Decision{Approved: true, Reason: loan.ReasonApproved, CombinedScore: 812,
			DSRBasisPoints: 2450, RateBasisPoints: 650, ApprovedAmount: 30_000_000, MonthlyPayment: 919_449},
		Scores: []loan.CreditScore{
			{Agency: "kcb", Score: 820, ReportID: "KCB-1"},
			{Agency: "nice", Score: 805, ReportID: "NICE-1"},
		},
		Financials: &loan.Financials{Source: "mydata", AnnualIncome: 60_000_000, TotalDebt: 12_000_000,
			AnnualDebtService: 3_600_000, ReportID: "MD-1"},
		CreditPath: "MYDATA",
	}
}

func get(t *testing.T, ctx context.Context, s *store.Store, id string) store.ApplicationRecord {
	t.Helper()
	r, err := s.GetApplication(ctx, id)
	if err != nil {
		t.Fatalf("GetApplication(%s): %v", id, err)
	}
	return r
}

func count(t *testing.T, ctx context.Context, s *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestSaveApplicationIdempotent(t *testing.T) {
	ctx, s := open(t)
	app := application("A-1")
	for i := range 3 {
		if err := s.SaveApplication(ctx, app, "loan-A-1"); err != nil {
			t.Fatalf("SaveApplication #%d: %v", i+1, err)
		}
	}
	n, err := s.CountApplications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("CountApplications = %d, want 1", n)
	}
	r := get(t, ctx, s, "A-1")
	if r.Application != app || r.Status != loan.StatusReceived || r.WorkflowID != "loan-A-1" {
		t.Fatalf("stored %+v, want %+v RECEIVED loan-A-1", r, app)
	}
}

func TestSaveApplicationConflict(t *testing.T) {
	ctx, s := open(t)
	app := application("A-2")
	if err := s.SaveApplication(ctx, app, "loan-A-2"); err != nil {
		t.Fatal(err)
	}
	before := get(t, ctx, s, "A-2")

	other := app
	other.Amount = 50_000_000
	other.TermMonths = 12
	err := s.SaveApplication(ctx, other, "loan-A-2b")
	if !errors.Is(err, store.ErrApplicationConflict) {
		t.Fatalf("SaveApplication with different content: got %v, want ErrApplicationConflict", err)
	}
	for _, want := range []string{"A-2", "amount stored 30000000, given 50000000", "term_months stored 36, given 12"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if after := get(t, ctx, s, "A-2"); !reflect.DeepEqual(before, after) {
		t.Fatalf("conflicting save changed the application: before %+v, after %+v", before, after)
	}
}

func TestSaveOutcomeIdempotent(t *testing.T) {
	ctx, s := open(t)
	if err := s.SaveApplication(ctx, application("A-3"), "loan-A-3"); err != nil {
		t.Fatal(err)
	}
	res := approved("A-3")
	if err := s.SaveOutcome(ctx, res); err != nil {
		t.Fatalf("SaveOutcome: %v", err)
	}
	first := get(t, ctx, s, "A-3")
	if err := s.SaveOutcome(ctx, res); err != nil {
		t.Fatalf("second SaveOutcome: %v", err)
	}
	second := get(t, ctx, s, "A-3")
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("second SaveOutcome changed the record:\nfirst  %+v\nsecond %+v", first, second)
	}
	if n := count(t, ctx, s, `SELECT count(*) FROM decisions WHERE application_id = $1`, "A-3"); n != 1 {
		t.Fatalf("decisions rows = %d, want 1", n)
	}
	if n := count(t, ctx, s, `SELECT count(*) FROM credit_reports WHERE application_id = $1`, "A-3"); n != 3 {
		t.Fatalf("credit_reports rows = %d, want 3", n)
	}
}

func TestGetApplicationRoundTrip(t *testing.T) {
	ctx, s := open(t)
	app := application("A-4")
	if err := s.SaveApplication(ctx, app, "loan-A-4"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, "A-4", loan.StatusCheckingCredit); err != nil {
		t.Fatal(err)
	}
	res := approved("A-4")
	if err := s.SaveOutcome(ctx, res); err != nil {
		t.Fatal(err)
	}
	r := get(t, ctx, s, "A-4")
	if r.Application != app || r.Status != loan.StatusApproved || r.CreditPath != "MYDATA" ||
		r.Error != "" || r.WorkflowID != "loan-A-4" {
		t.Fatalf("record %+v", r)
	}
	if r.Decision == nil || *r.Decision != *res.Decision {
		t.Fatalf("decision %+v, want %+v", r.Decision, res.Decision)
	}
	var scores []loan.CreditScore
	var fin *loan.Financials
	for _, rep := range r.Reports {
		if rep.FetchedAt.IsZero() {
			t.Errorf("report %s has no fetched_at", rep.Agency)
		}
		switch {
		case rep.Score != nil:
			scores = append(scores, *rep.Score)
		case rep.Financials != nil:
			fin = rep.Financials
		}
	}
	if !reflect.DeepEqual(scores, res.Scores) {
		t.Errorf("scores %+v, want %+v", scores, res.Scores)
	}
	if fin == nil || *fin != *res.Financials {
		t.Errorf("financials %+v, want %+v", fin, res.Financials)
	}
	if r.CreatedAt.IsZero() || r.UpdatedAt.Before(r.CreatedAt) {
		t.Errorf("created_at %v, updated_at %v", r.CreatedAt, r.UpdatedAt)
	}

	// A failure keeps its error and has no decision; an empty credit path is NULL.
	if err := s.SaveApplication(ctx, application("A-4f"), "loan-A-4f"); err != nil {
		t.Fatal(err)
	}
	failed := loan.Result{ApplicationID: "A-4f", Status: loan.StatusFailed, Error: "kcb: timeout after 3 attempts"}
	if err := s.SaveOutcome(ctx, failed); err != nil {
		t.Fatal(err)
	}
	f := get(t, ctx, s, "A-4f")
	if f.Status != loan.StatusFailed || f.Error != failed.Error || f.CreditPath != "" || f.Decision != nil || len(f.Reports) != 0 {
		t.Fatalf("failed record %+v", f)
	}
	if n := count(t, ctx, s, `SELECT count(*) FROM applications WHERE application_id = 'A-4f' AND credit_path IS NULL`); n != 1 {
		t.Fatalf("empty credit path not stored as NULL")
	}
}

func TestGetApplicationNotFound(t *testing.T) {
	ctx, s := open(t)
	if _, err := s.GetApplication(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetApplication of a missing id: got %v, want ErrNotFound", err)
	}
	if err := s.SetStatus(ctx, "nope", loan.StatusUnderwriting); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetStatus of a missing id: got %v, want ErrNotFound", err)
	}
	if err := s.SaveOutcome(ctx, approved("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SaveOutcome of a missing id: got %v, want ErrNotFound", err)
	}
}

func TestTerminalConflict(t *testing.T) {
	ctx, s := open(t)
	if err := s.SaveApplication(ctx, application("A-5"), "loan-A-5"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveOutcome(ctx, approved("A-5")); err != nil {
		t.Fatal(err)
	}
	before := get(t, ctx, s, "A-5")

	rejected := loan.Result{ApplicationID: "A-5", Status: loan.StatusRejected,
		Decision: &loan.Decision{Reason: loan.ReasonScoreTooLow, CombinedScore: 400, DSRBasisPoints: 2450}}
	if err := s.SaveOutcome(ctx, rejected); !errors.Is(err, store.ErrTerminalConflict) {
		t.Fatalf("SaveOutcome REJECTED over APPROVED: got %v, want ErrTerminalConflict", err)
	}
	// Same status, different decision: the stored decision stands.
	other := approved("A-5")
	other.Decision.ApprovedAmount = 20_000_000
	other.Scores = append(other.Scores, loan.CreditScore{Agency: "extra", Score: 1})
	if err := s.SaveOutcome(ctx, other); !errors.Is(err, store.ErrTerminalConflict) {
		t.Fatalf("SaveOutcome with a different decision: got %v, want ErrTerminalConflict", err)
	}
	if err := s.SetStatus(ctx, "A-5", loan.StatusFailed); !errors.Is(err, store.ErrTerminalConflict) {
		t.Fatalf("SetStatus FAILED over APPROVED: got %v, want ErrTerminalConflict", err)
	}
	if after := get(t, ctx, s, "A-5"); !reflect.DeepEqual(before, after) {
		t.Fatalf("refused writes changed the record:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestSetStatus(t *testing.T) {
	ctx, s := open(t)
	if err := s.SaveApplication(ctx, application("A-6"), "loan-A-6"); err != nil {
		t.Fatal(err)
	}
	for _, st := range []loan.Status{loan.StatusCheckingCredit, loan.StatusUnderwriting, loan.StatusUnderwriting} {
		if err := s.SetStatus(ctx, "A-6", st); err != nil {
			t.Fatalf("SetStatus %s: %v", st, err)
		}
		if got := get(t, ctx, s, "A-6").Status; got != st {
			t.Fatalf("status %s, want %s", got, st)
		}
	}
	if err := s.SetStatus(ctx, "A-6", loan.StatusRejected); err != nil {
		t.Fatalf("SetStatus REJECTED: %v", err)
	}
	// After a terminal status: a late progress update and a repeat are ignored.
	for _, st := range []loan.Status{loan.StatusCheckingCredit, loan.StatusRejected} {
		if err := s.SetStatus(ctx, "A-6", st); err != nil {
			t.Fatalf("SetStatus %s after REJECTED: %v", st, err)
		}
		if got := get(t, ctx, s, "A-6").Status; got != loan.StatusRejected {
			t.Fatalf("status %s after SetStatus %s, want REJECTED kept", got, st)
		}
	}
	if err := s.SetStatus(ctx, "A-6", loan.StatusApproved); !errors.Is(err, store.ErrTerminalConflict) {
		t.Fatalf("SetStatus APPROVED after REJECTED: got %v, want ErrTerminalConflict", err)
	}
}

func TestSaveOutcomeRefusesContradiction(t *testing.T) {
	ctx, s := open(t)
	if err := s.SaveApplication(ctx, application("A-7"), "loan-A-7"); err != nil {
		t.Fatal(err)
	}
	bad := approved("A-7")
	bad.Decision = nil
	if err := s.SaveOutcome(ctx, bad); err == nil {
		t.Fatal("SaveOutcome APPROVED without a decision succeeded")
	}
	if got := get(t, ctx, s, "A-7").Status; got != loan.StatusReceived {
		t.Fatalf("status %s, want RECEIVED kept", got)
	}
}

func TestOpenBadURL(t *testing.T) {
	for _, u := range []string{
		"postgres://u:s3cret@127.0.0.1:5432/db?sslmode=bogus",
		"postgres://u:s3cret%zz@127.0.0.1:5432/db",
		"host=127.0.0.1 password=s3cret sslmode=bogus",
	} {
		_, err := store.Open(context.Background(), u)
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("Open(%q): got %v, want an error naming DATABASE_URL without the password", u, err)
		}
		t.Logf("Open: %v", err)
	}
}

// The pool's size: the caller's, else the URL's pool_max_conns, else 16; a
// negative size is refused with the value and what is accepted.
func TestOpenSizedPool(t *testing.T) {
	testenv.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := testenv.Postgres(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	for _, tc := range []struct {
		url      string
		maxConns int
		want     int32
	}{
		{url, 0, store.DefaultMaxConns},
		{url, 5, 5},
		{url + sep + "pool_max_conns=3", 0, 3},
		{url + sep + "pool_max_conns=3", 7, 7},
	} {
		s, err := store.OpenSized(ctx, tc.url, tc.maxConns)
		if err != nil {
			t.Fatalf("OpenSized(%d): %v", tc.maxConns, err)
		}
		if got := s.Pool().Config().MaxConns; got != tc.want {
			t.Errorf("OpenSized(pool_max_conns in URL %v, %d): %d connections, want %d", store.HasPoolSize(tc.url), tc.maxConns, got, tc.want)
		}
		s.Close()
	}
	if _, err := store.OpenSized(ctx, url, -1); err == nil || !strings.Contains(err.Error(), "pool size -1: accepted 0") {
		t.Fatalf("OpenSized(-1): %v, want the value and what is accepted", err)
	}
}

func TestConcurrentOutcomesOneWins(t *testing.T) {
	ctx, s := open(t)
	if err := s.SaveApplication(ctx, application("A-8"), "loan-A-8"); err != nil {
		t.Fatal(err)
	}
	rejected := loan.Result{ApplicationID: "A-8", Status: loan.StatusRejected,
		Decision: &loan.Decision{Reason: loan.ReasonDSRTooHigh, CombinedScore: 700, DSRBasisPoints: 5200}}
	errs := make(chan error, 2)
	for _, res := range []loan.Result{approved("A-8"), rejected} {
		go func() { errs <- s.SaveOutcome(ctx, res) }()
	}
	var ok, conflict int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrTerminalConflict):
			conflict++
		default:
			t.Fatalf("SaveOutcome: %v", err)
		}
	}
	if ok != 1 || conflict != 1 {
		t.Fatalf("%d succeeded and %d conflicted, want 1 and 1", ok, conflict)
	}
	r := get(t, ctx, s, "A-8")
	if r.Decision == nil || r.Decision.Approved != (r.Status == loan.StatusApproved) {
		t.Fatalf("status %s with decision %+v", r.Status, r.Decision)
	}
}
