// Package store is the one small type through which loanflow reaches
// Postgres: applications, the agencies' answers and underwriting decisions.
// Every write is idempotent by application id, because Temporal retries
// activities and a customer may submit the same application twice.
package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"loanflow/loan"
)

// ErrNotFound means no application has the id asked for.
var ErrNotFound = errors.New("application not found")

// ErrApplicationConflict means an application id is already stored with a
// different customer, amount or term.
var ErrApplicationConflict = errors.New("application id already used with different content")

// ErrTerminalConflict means the application already has a decided status or
// a decision that the one being written contradicts, or that status cannot
// move to the one given. The stored one stands.
var ErrTerminalConflict = errors.New("application already decided differently")

// ErrInvalidResult marks a result that contradicts itself, holds a value
// its column cannot store, or that Postgres refused as data (SQLSTATE
// classes 22, data exception, and 23, integrity constraint violation);
// retrying cannot fix it.
var ErrInvalidResult = errors.New("invalid result")

// maxInt4 is the largest value of a Postgres int column.
const maxInt4 = 1<<31 - 1

// permanent marks Postgres' refusal of the data itself as ErrInvalidResult,
// so the activity fails for good instead of retrying the same value forever.
func permanent(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")) {
		return fmt.Errorf("%w: postgres refused the data (SQLSTATE %s): %w", ErrInvalidResult, pgErr.Code, err)
	}
	return err
}

// DefaultMaxConns is the pool's size when neither the caller nor
// DATABASE_URL (pool_max_conns) sets one. pgxpool's own default (the CPU
// count, at least 4) is too few for a worker running dozens of activities on
// a 2-core machine.
const DefaultMaxConns = 16

// HasPoolSize says whether a DATABASE_URL sets the pool's size itself
// (pool_max_conns).
func HasPoolSize(databaseURL string) bool {
	return strings.Contains(databaseURL, "pool_max_conns")
}

// opTimeout bounds each Store call, so a stuck Postgres fails an activity
// attempt (which Temporal retries) instead of holding a worker slot.
const opTimeout = 10 * time.Second

// progress lists the statuses of an application that is still being decided.
var progress = []loan.Status{loan.StatusReceived, loan.StatusCheckingCredit, loan.StatusUnderwriting}

func isProgress(s loan.Status) bool { return slices.Contains(progress, s) }

// transition says what writing status next (with reason code reason) over
// the stored status does: nothing (a repeat, or a step the application has
// already passed), a move, or an error wrapping ErrTerminalConflict.
//
//	progress  -> progress, APPROVED, REJECTED, FAILED, CANCELLED
//	APPROVED  -> DISBURSED, CANCELLED, FAILED (with a reason code: the
//	             disbursement failed for good), REJECTED (EXPOSURE_LIMIT_EXCEEDED only)
//	final     -> nothing
//
// A late progress update is ignored once decided, and so is APPROVED once
// DISBURSED: a rerun of a disbursed application walks through APPROVED again
// and then finds its loan already booked.
func transition(stored, next loan.Status, reason string) (move bool, err error) {
	exposure := next == loan.StatusRejected && reason == loan.ReasonExposureLimitExceeded
	switch {
	case stored == next:
		return false, nil
	case isProgress(next) && !isProgress(stored):
		return false, nil
	case stored == loan.StatusDisbursed && next == loan.StatusApproved:
		return false, nil
	case isProgress(stored):
		if next == loan.StatusDisbursed || exposure {
			return false, fmt.Errorf("%w: stored status is %s, given %s (%s), which only follows APPROVED",
				ErrTerminalConflict, stored, next, reason)
		}
		return true, nil
	case stored == loan.StatusApproved:
		// FAILED after APPROVED needs its reason code (e.g. DISBURSEMENT_FAILED),
		// so only SaveOutcome can write it.
		if next == loan.StatusDisbursed || next == loan.StatusCancelled || exposure || (next == loan.StatusFailed && reason != "") {
			return true, nil
		}
		return false, fmt.Errorf("%w: stored status is APPROVED, given %s; APPROVED moves only to DISBURSED, CANCELLED, FAILED or REJECTED for %s",
			ErrTerminalConflict, next, loan.ReasonExposureLimitExceeded)
	case stored.Final():
		return false, fmt.Errorf("%w: stored status is %s, which is final; given %s", ErrTerminalConflict, stored, next)
	}
	return false, fmt.Errorf("%w: stored status %q is unknown; given %s", ErrTerminalConflict, stored, next)
}

// Store reads and writes loanflow's Postgres tables through a connection pool.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to Postgres at databaseURL (the DATABASE_URL setting) and
// checks the connection with a ping. The pool holds pool_max_conns of the
// URL, or 16 connections.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	return OpenSized(ctx, databaseURL, 0)
}

// OpenSized is Open with a pool of maxConns connections; 0 keeps Open's size
// (the URL's pool_max_conns, or 16).
func OpenSized(ctx context.Context, databaseURL string, maxConns int) (*Store, error) {
	if maxConns < 0 || maxConns > math.MaxInt32 {
		return nil, fmt.Errorf("postgres pool size %d: accepted 0 (pool_max_conns of the URL, or %d) to %d", maxConns, DefaultMaxConns, math.MaxInt32)
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", scrub(err, databaseURL))
	}
	switch {
	case maxConns > 0:
		cfg.MaxConns = int32(maxConns)
	case !HasPoolSize(databaseURL):
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = opTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open Postgres pool for %s: %w", where(cfg), err)
	}
	pctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to Postgres at %s (check DATABASE_URL): %w", where(cfg), err)
	}
	return New(pool), nil
}

// scrubbedError hides a password that an error's text may repeat.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub removes databaseURL's password from err's text. pgx redacts
// passwords only on a best-effort basis, and a URL too broken to parse may
// hide one anywhere, so then only a fixed message is kept.
func scrub(err error, databaseURL string) error {
	msg := err.Error()
	u, perr := url.Parse(databaseURL)
	if perr != nil && strings.Contains(databaseURL, "://") {
		return &scrubbedError{"not a valid URL; expected postgres://user:password@host:port/dbname", err}
	}
	if perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
			msg = strings.ReplaceAll(msg, url.UserPassword("", p).String()[1:], "xxxxx")
		}
	}
	return &scrubbedError{msg, err}
}

// where names the server and database, never the password.
func where(cfg *pgxpool.Config) string {
	u := url.URL{Scheme: "postgres", User: url.User(cfg.ConnConfig.User),
		Host: fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port), Path: "/" + cfg.ConnConfig.Database}
	return u.String()
}

// New wraps a pool the caller has opened; Close closes it.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool returns the underlying pool, for schema checks and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() { s.pool.Close() }

// SaveApplication stores a newly received application with status RECEIVED.
// Saving the same application again is a no-op success; saving an id already
// stored with a different customer, amount or term returns an error wrapping
// ErrApplicationConflict, and the stored application is left as it was.
func (s *Store) SaveApplication(ctx context.Context, app loan.Application, workflowID string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO applications (application_id, customer_id, amount, term_months, status, workflow_id)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (application_id) DO NOTHING`,
		app.ApplicationID, app.CustomerID, app.Amount, app.TermMonths, loan.StatusReceived, workflowID)
	if err != nil {
		return fmt.Errorf("save application %s: %w", app.ApplicationID, permanent(err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var stored loan.Application
	err = s.pool.QueryRow(ctx, `
		SELECT application_id, customer_id, amount, term_months FROM applications WHERE application_id = $1`,
		app.ApplicationID).Scan(&stored.ApplicationID, &stored.CustomerID, &stored.Amount, &stored.TermMonths)
	if err != nil {
		return fmt.Errorf("save application %s: read the stored one: %w", app.ApplicationID, err)
	}
	if diffs := loan.Diff(stored, app, "stored"); len(diffs) > 0 {
		return fmt.Errorf("save application %s: %w: %s", app.ApplicationID, ErrApplicationConflict, strings.Join(diffs, ", "))
	}
	return nil
}

// SetStatus records an application's progress. Once decided (APPROVED or a
// final status) a progress status or a repeat is ignored, so a late or
// replayed update is harmless. APPROVED may still move to DISBURSED or
// CANCELLED; any other change of a decided status returns an error wrapping
// ErrTerminalConflict (REJECTED after APPROVED needs its reason code, so only
// SaveOutcome can write it). A missing application returns an error wrapping
// ErrNotFound.
func (s *Store) SetStatus(ctx context.Context, applicationID string, status loan.Status) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var stored loan.Status
		// FOR UPDATE orders this against a concurrent SaveOutcome.
		err := tx.QueryRow(ctx, `SELECT status FROM applications WHERE application_id = $1 FOR UPDATE`,
			applicationID).Scan(&stored)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock application: %w", err)
		}
		move, err := transition(stored, status, "")
		if err != nil || !move {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE applications SET status = $2, updated_at = now() WHERE application_id = $1`,
			applicationID, status); err != nil {
			return fmt.Errorf("update application: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set status of application %s to %s: %w", applicationID, status, err)
	}
	return nil
}

// SaveOutcome records what the workflow learned and decided, in one
// transaction: a credit_reports row per score and one for the financials, the
// decision if there is one, and the application's status, status reason,
// credit path and error. Running it again with the same result changes
// nothing. It follows the status rules of transition: an APPROVED
// application moves on to DISBURSED, CANCELLED or REJECTED for
// EXPOSURE_LIMIT_EXCEEDED, and a final status never changes. A status or
// decision that contradicts the stored one is never written: the call
// returns an error wrapping ErrTerminalConflict and writes nothing.
func (s *Store) SaveOutcome(ctx context.Context, res loan.Result) error {
	if err := checkResult(res); err != nil {
		return fmt.Errorf("save outcome of application %s: %w", res.ApplicationID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var stored loan.Status
		// FOR UPDATE serialises concurrent outcomes for one application.
		err := tx.QueryRow(ctx, `SELECT status FROM applications WHERE application_id = $1 FOR UPDATE`,
			res.ApplicationID).Scan(&stored)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock application: %w", err)
		}
		move, err := transition(stored, res.Status, res.StatusReason)
		if err != nil {
			return err
		}
		if !move {
			// A repeat, or a step already passed: it may confirm, never
			// change, what is stored.
			return sameDecision(ctx, tx, res)
		}

		for _, sc := range res.Scores {
			if _, err := tx.Exec(ctx, `
				INSERT INTO credit_reports (application_id, agency, score, report_id)
				VALUES ($1, $2, $3, $4)
				ON CONFLICT (application_id, agency) DO NOTHING`,
				res.ApplicationID, sc.Agency, sc.Score, nullable(sc.ReportID)); err != nil {
				return fmt.Errorf("insert %s score: %w", sc.Agency, err)
			}
		}
		if f := res.Financials; f != nil {
			if _, err := tx.Exec(ctx, `
				INSERT INTO credit_reports (application_id, agency, annual_income, total_debt, annual_debt_service, report_id)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (application_id, agency) DO NOTHING`,
				res.ApplicationID, f.Source, f.AnnualIncome, f.TotalDebt, f.AnnualDebtService, nullable(f.ReportID)); err != nil {
				return fmt.Errorf("insert %s financials: %w", f.Source, err)
			}
		}

		if d := res.Decision; d != nil {
			tag, err := tx.Exec(ctx, `
				INSERT INTO decisions (application_id, approved, reason, combined_score, dsr_bp, rate_bp,
				                       approved_amount, monthly_payment)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (application_id) DO NOTHING`,
				res.ApplicationID, d.Approved, d.Reason, d.CombinedScore, d.DSRBasisPoints, d.RateBasisPoints,
				d.ApprovedAmount, d.MonthlyPayment)
			if err != nil {
				return fmt.Errorf("insert decision: %w", err)
			}
			if tag.RowsAffected() == 0 {
				if err := sameDecision(ctx, tx, res); err != nil {
					return err
				}
			}
		}

		if _, err := tx.Exec(ctx, `
			UPDATE applications SET status = $2, credit_path = $3, error = $4,
			       status_reason = $5, status_detail = $6, updated_at = now()
			WHERE application_id = $1`,
			res.ApplicationID, res.Status, nullable(res.CreditPath), nullable(res.Error),
			nullable(res.StatusReason), nullable(res.StatusDetail)); err != nil {
			return fmt.Errorf("update application: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save outcome of application %s: %w", res.ApplicationID, permanent(err))
	}
	return nil
}

// sameDecision returns an error wrapping ErrTerminalConflict when res carries
// a decision that differs from the stored one (or none is stored).
func sameDecision(ctx context.Context, tx pgx.Tx, res loan.Result) error {
	if res.Decision == nil {
		return nil
	}
	old, err := decision(ctx, tx, res.ApplicationID)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: no decision stored, given %+v", ErrTerminalConflict, *res.Decision)
	}
	if err != nil {
		return err
	}
	if *old != *res.Decision {
		return fmt.Errorf("%w: stored decision %+v, given %+v", ErrTerminalConflict, *old, *res.Decision)
	}
	return nil
}

// checkResult refuses results that contradict themselves, since a stored
// APPROVED status is what disbursement acts on.
func checkResult(res loan.Result) error {
	approving := res.Decision != nil && res.Decision.Approved
	exposure := res.StatusReason == loan.ReasonExposureLimitExceeded
	switch {
	case res.Status == "":
		return fmt.Errorf("%w: no status", ErrInvalidResult)
	case res.Status == loan.StatusApproved && !approving:
		return fmt.Errorf("%w: status APPROVED needs an approving decision", ErrInvalidResult)
	case res.Status == loan.StatusDisbursed && (!approving || res.Disbursement == nil):
		return fmt.Errorf("%w: status DISBURSED needs an approving decision and a disbursement", ErrInvalidResult)
	case res.Status == loan.StatusRejected && approving && !exposure:
		return fmt.Errorf("%w: status REJECTED with an approving decision needs status reason %s", ErrInvalidResult, loan.ReasonExposureLimitExceeded)
	case exposure && (res.Status != loan.StatusRejected || !approving):
		return fmt.Errorf("%w: status reason %s needs status REJECTED and an approving decision", ErrInvalidResult, loan.ReasonExposureLimitExceeded)
	case (res.Status == loan.StatusCancelled) != (res.StatusReason == loan.ReasonCancelled):
		return fmt.Errorf("%w: status %s with status reason %q: CANCELLED and reason %s go together", ErrInvalidResult, res.Status, res.StatusReason, loan.ReasonCancelled)
	}
	if d := res.Decision; d != nil {
		// The columns are int and bigint won: refuse what they cannot hold
		// (or what no decision can mean) before Postgres does.
		for _, f := range []struct {
			name   string
			v, max int64
		}{
			{"combined_score", int64(d.CombinedScore), maxInt4},
			{"dsr_bp", int64(d.DSRBasisPoints), maxInt4},
			{"rate_bp", int64(d.RateBasisPoints), maxInt4},
			{"approved_amount", d.ApprovedAmount, loan.MaxAmount},
			{"monthly_payment", d.MonthlyPayment, loan.MaxAmount},
		} {
			if f.v < 0 || f.v > f.max {
				return fmt.Errorf("%w: decision %s %d: accepted 0 to %d", ErrInvalidResult, f.name, f.v, f.max)
			}
		}
	}
	return nil
}

// Report is one agency's answer stored for an application: a bureau's score
// or the customer's financials.
type Report struct {
	Agency     string
	Score      *loan.CreditScore // set for a credit bureau's answer
	Financials *loan.Financials  // set for MyData or app scraping
	FetchedAt  time.Time
}

// ApplicationRecord is everything stored about one application.
type ApplicationRecord struct {
	loan.Application
	Status     loan.Status
	CreditPath string
	Error      string
	// StatusReason and StatusDetail explain a status reached after the
	// decision (see loan.Result); empty otherwise.
	StatusReason string
	StatusDetail string
	WorkflowID   string
	Decision     *loan.Decision // nil until decided
	Reports      []Report       // in the order they were stored
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// GetApplication returns everything stored about an application, or an error
// wrapping ErrNotFound.
func (s *Store) GetApplication(ctx context.Context, id string) (ApplicationRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var r ApplicationRecord
	// Repeatable read, so the three queries see one state.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			var creditPath, errText, statusReason, statusDetail *string
			err := tx.QueryRow(ctx, `
				SELECT application_id, customer_id, amount, term_months, status, credit_path, error,
				       status_reason, status_detail, workflow_id, created_at, updated_at
				FROM applications WHERE application_id = $1`, id).Scan(
				&r.ApplicationID, &r.CustomerID, &r.Amount, &r.TermMonths, &r.Status, &creditPath, &errText,
				&statusReason, &statusDetail, &r.WorkflowID, &r.CreatedAt, &r.UpdatedAt)
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return fmt.Errorf("read application: %w", err)
			}
			r.CreditPath, r.Error = deref(creditPath), deref(errText)
			r.StatusReason, r.StatusDetail = deref(statusReason), deref(statusDetail)

			r.Decision, err = decision(ctx, tx, id)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}

			rows, err := tx.Query(ctx, `
				SELECT agency, score, annual_income, total_debt, annual_debt_service, report_id, fetched_at
				FROM credit_reports WHERE application_id = $1 ORDER BY id`, id)
			if err != nil {
				return fmt.Errorf("read credit reports: %w", err)
			}
			var (
				rep                       Report
				score                     *int
				income, debt, debtService *int64
				reportID                  *string
			)
			_, err = pgx.ForEachRow(rows, []any{&rep.Agency, &score, &income, &debt, &debtService, &reportID, &rep.FetchedAt},
				func() error {
					out := Report{Agency: rep.Agency, FetchedAt: rep.FetchedAt}
					if score != nil {
						out.Score = &loan.CreditScore{Agency: rep.Agency, Score: *score, ReportID: deref(reportID)}
					} else {
						out.Financials = &loan.Financials{Source: rep.Agency, AnnualIncome: deref(income),
							TotalDebt: deref(debt), AnnualDebtService: deref(debtService), ReportID: deref(reportID)}
					}
					r.Reports = append(r.Reports, out)
					return nil
				})
			if err != nil {
				return fmt.Errorf("read credit reports: %w", err)
			}
			return nil
		})
	if err != nil {
		return ApplicationRecord{}, fmt.Errorf("get application %s: %w", id, err)
	}
	return r, nil
}

// decision reads an application's decision, or returns ErrNotFound.
func decision(ctx context.Context, tx pgx.Tx, id string) (*loan.Decision, error) {
	var d loan.Decision
	err := tx.QueryRow(ctx, `
		SELECT approved, reason, combined_score, dsr_bp, rate_bp, approved_amount, monthly_payment
		FROM decisions WHERE application_id = $1`, id).Scan(
		&d.Approved, &d.Reason, &d.CombinedScore, &d.DSRBasisPoints, &d.RateBasisPoints,
		&d.ApprovedAmount, &d.MonthlyPayment)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read decision: %w", err)
	}
	return &d, nil
}

// CountApplications returns how many applications are stored.
func (s *Store) CountApplications(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM applications`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count applications: %w", err)
	}
	return n, nil
}

// nullable stores an empty string as NULL.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
