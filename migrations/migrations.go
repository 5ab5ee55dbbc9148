// Package migrations owns loanflow's Postgres schema: the SQL files embedded
// here, applying them when a worker starts (as Flyway does) and checking that
// the database is the one this build's code was written against.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers the pgx5:// scheme
	"github.com/golang-migrate/migrate/v4/source"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed *.sql
var files embed.FS

// required lists every table and column the code reads or writes. Validate
// checks the database against it, so a hand-edited or half-restored schema
// stops the worker at start instead of failing a customer's application later.
// Add to it in the same change that adds code using a new column.
var required = map[string][]string{
	"applications": {
		"application_id", "customer_id", "amount", "term_months", "status",
		"credit_path", "error", "workflow_id", "created_at", "updated_at",
		"status_reason", "status_detail",
	},
	"credit_reports": {
		"id", "application_id", "agency", "score", "annual_income", "total_debt",
		"annual_debt_service", "report_id", "fetched_at",
	},
	"decisions": {
		"application_id", "approved", "reason", "combined_score", "dsr_bp", "rate_bp",
		"approved_amount", "monthly_payment", "decided_at",
	},
	"customers": {
		"customer_id", "exposure_limit", "exposure", "version", "last_fence", "created_at", "updated_at",
	},
	"breaker_events": {"id", "breaker", "from_state", "to_state", "reason", "source", "at"},
	"loans": {
		"loan_id", "application_id", "customer_id", "principal", "rate_bp", "term_months",
		"monthly_payment", "status", "fencing_token", "created_at", "disbursed_at",
	},
}

// ErrDirty means a migration failed part-way and schema_migrations is marked
// dirty; a person has to repair the schema before anything runs on it.
var ErrDirty = errors.New("database schema is dirty")

// ErrNewerSchema means the database was migrated by a newer build than this one.
var ErrNewerSchema = errors.New("database schema is newer than this build")

// defaultLockTimeout bounds the wait for golang-migrate's advisory lock when
// the caller's context has no deadline. Another starter may be running a
// long migration, so it is far above golang-migrate's own 15 s default.
const defaultLockTimeout = 5 * time.Minute

// kindError carries a message of its own and a sentinel for errors.Is.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func dirtyError(version uint) error {
	return &kindError{ErrDirty, fmt.Sprintf(
		"database schema is dirty at version %d: migration %d failed part-way; "+
			"fix the schema by hand, then record the version it now matches with "+
			"`migrate -database \"$DATABASE_URL\" force %d` (or the previous version if you undid the migration) and start again",
		version, version, version)}
}

func newerError(version, latest uint) error {
	return &kindError{ErrNewerSchema, fmt.Sprintf(
		"database is at version %d, this build knows up to %d: deploy a newer build", version, latest)}
}

// Latest returns the highest migration version embedded in this build.
func Latest() (uint, error) {
	src, err := iofs.New(files, ".")
	if err != nil {
		return 0, fmt.Errorf("read embedded migrations: %w", err)
	}
	defer func() { _ = src.Close() }()
	return latest(src)
}

func latest(src source.Driver) (uint, error) {
	v, err := src.First()
	if err != nil {
		return 0, fmt.Errorf("read embedded migrations: first version: %w", err)
	}
	for {
		next, err := src.Next(v)
		if errors.Is(err, fs.ErrNotExist) {
			return v, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read embedded migrations: version after %d: %w", v, err)
		}
		v = next
	}
}

// Up applies every embedded migration the database lacks. A database that is
// already current is success. It refuses a dirty database and one migrated by
// a newer build. Concurrent callers are safe: golang-migrate serialises them
// with a Postgres advisory lock, and the ones that wait find nothing to do.
// Cancelling ctx stops between migrations, never inside one.
func Up(ctx context.Context, databaseURL string) (err error) {
	murl, err := migrateURL(databaseURL)
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	src, err := iofs.New(files, ".")
	if err != nil {
		return fmt.Errorf("migrate up: read embedded migrations: %w", err)
	}
	last, err := latest(src)
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, murl)
	if err != nil {
		return fmt.Errorf("migrate up: connect to %s: %w", redact(databaseURL), err)
	}
	defer func() {
		srcErr, dbErr := m.Close()
		if err == nil && (srcErr != nil || dbErr != nil) {
			err = fmt.Errorf("migrate up: close: %w", errors.Join(srcErr, dbErr))
		}
	}()

	m.LockTimeout = defaultLockTimeout
	if d, ok := ctx.Deadline(); ok {
		m.LockTimeout = time.Until(d)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			m.GracefulStop <- true
		case <-done:
		}
	}()

	// A newer version is refused before m.Up so the message says what to do.
	// Dirty is left to m.Up, which checks it under the advisory lock: read
	// here, it would also catch another starter's migration in progress.
	if v, _, verr := m.Version(); verr == nil && v > last {
		return fmt.Errorf("migrate up: %w", newerError(v, last))
	}
	err = m.Up()
	switch {
	case err == nil, errors.Is(err, migrate.ErrNoChange):
		if ctx.Err() != nil {
			// A graceful stop returns nil; only the version says whether all ran.
			if v, _, verr := m.Version(); verr != nil || v != last {
				return fmt.Errorf("migrate up: stopped at version %d of %d: %w", v, last, ctx.Err())
			}
		}
		return nil
	case errors.As(err, new(migrate.ErrDirty)):
		v, _, _ := m.Version()
		return fmt.Errorf("migrate up: %w", dirtyError(v))
	}
	if rerr := refuse(m, last); rerr != nil {
		return fmt.Errorf("migrate up: %w", rerr)
	}
	return fmt.Errorf("migrate up: %w", err)
}

// refuse returns an error when the database's recorded version must not be
// migrated by this build.
func refuse(m *migrate.Migrate, last uint) error {
	v, dirty, err := m.Version()
	switch {
	case errors.Is(err, migrate.ErrNilVersion):
		return nil
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	case dirty:
		return dirtyError(v)
	case v > last:
		return newerError(v, last)
	}
	return nil
}

// migrateURL turns a postgres:// URL into the pgx5:// form golang-migrate's
// pgx/v5 driver registers, and bounds the connect so an unreachable host fails
// instead of hanging the worker's start.
func migrateURL(databaseURL string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		// url's error repeats the input, password included.
		return "", errors.New("parse DATABASE_URL: not a valid URL; expected postgres://user:password@host:port/dbname")
	}
	switch u.Scheme {
	case "postgres", "postgresql", "pgx5":
	default:
		return "", fmt.Errorf("parse DATABASE_URL: scheme %q: accepted postgres or postgresql", u.Scheme)
	}
	u.Scheme = "pgx5"
	q := u.Query()
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", "10")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// redact returns the URL without its password, for error messages.
func redact(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "DATABASE_URL"
	}
	return u.Redacted()
}

// schemaError lists every way the database differs from what the code needs.
type schemaError struct {
	problems []string
	kinds    []error
}

func (e *schemaError) Error() string   { return "schema check: " + strings.Join(e.problems, "; ") }
func (e *schemaError) Unwrap() []error { return e.kinds }

func (e *schemaError) add(err error) {
	e.problems = append(e.problems, err.Error())
	var k *kindError
	if errors.As(err, &k) {
		e.kinds = append(e.kinds, k.kind)
	}
}

// Validate checks that the database is at exactly this build's latest version,
// not dirty, and has every table and column the code needs. The one error it
// returns names every difference found, e.g.
// "schema check: table decisions lacks column rate_bp".
func Validate(ctx context.Context, pool *pgxpool.Pool) error {
	last, err := Latest()
	if err != nil {
		return fmt.Errorf("schema check: %w", err)
	}
	se := &schemaError{}

	var version int64
	var dirty bool
	err = pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&version, &dirty)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table
		se.add(errors.New("table schema_migrations is missing: run migrations.Up"))
	case errors.Is(err, pgx.ErrNoRows):
		se.add(errors.New("schema_migrations records no version: run migrations.Up"))
	case err != nil:
		return fmt.Errorf("schema check: read schema_migrations: %w", err)
	case dirty:
		se.add(dirtyError(uint(version)))
	case version < 0:
		se.add(fmt.Errorf("database is at no version, this build needs %d: run migrations.Up", last))
	case uint(version) > last:
		se.add(newerError(uint(version), last))
	case uint(version) < last:
		se.add(fmt.Errorf("database is at version %d, this build needs %d: run migrations.Up", version, last))
	}

	tables := make([]string, 0, len(required))
	for t := range required {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	rows, err := pool.Query(ctx, `
		SELECT table_name::text, column_name::text
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ANY($1)`, tables)
	if err != nil {
		return fmt.Errorf("schema check: read columns: %w", err)
	}
	have := map[string]map[string]bool{}
	var table, column string
	_, err = pgx.ForEachRow(rows, []any{&table, &column}, func() error {
		if have[table] == nil {
			have[table] = map[string]bool{}
		}
		have[table][column] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("schema check: read columns: %w", err)
	}
	for _, t := range tables {
		cols, ok := have[t]
		if !ok {
			se.add(fmt.Errorf("table %s is missing", t))
			continue
		}
		for _, c := range required[t] {
			if !cols[c] {
				se.add(fmt.Errorf("table %s lacks column %s", t, c))
			}
		}
	}

	if len(se.problems) > 0 {
		return se
	}
	return nil
}
