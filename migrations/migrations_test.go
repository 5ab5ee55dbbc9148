package migrations_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"loanflow/internal/testenv"
	"loanflow/migrations"
)

func setup(t *testing.T) (context.Context, string, *pgxpool.Pool) {
	t.Helper()
	testenv.Short(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return ctx, url, pool
}

func exec(t *testing.T, ctx context.Context, pool *pgxpool.Pool, sql string) {
	t.Helper()
	if _, err := pool.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestLatest(t *testing.T) {
	v, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if v < 1 {
		t.Fatalf("Latest() = %d, want >= 1", v)
	}
}

func TestUpThenValidate(t *testing.T) {
	ctx, url, pool := setup(t)
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if err := migrations.Validate(ctx, pool); err != nil {
		t.Fatalf("Validate after Up: %v", err)
	}
	// Running again finds nothing to do and is still success.
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if err := migrations.Validate(ctx, pool); err != nil {
		t.Fatalf("Validate after second Up: %v", err)
	}
}

func TestValidateBeforeUp(t *testing.T) {
	ctx, _, pool := setup(t)
	err := migrations.Validate(ctx, pool)
	if err == nil {
		t.Fatal("Validate on an empty database succeeded")
	}
	for _, want := range []string{"schema_migrations is missing", "table applications is missing", "table decisions is missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not say %q", err, want)
		}
	}
}

func TestDirtyRefused(t *testing.T) {
	ctx, url, pool := setup(t)
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("Up: %v", err)
	}
	exec(t, ctx, pool, `UPDATE schema_migrations SET dirty = true`)
	latest, _ := migrations.Latest()

	err := migrations.Up(ctx, url)
	if !errors.Is(err, migrations.ErrDirty) {
		t.Fatalf("Up on dirty database: got %v, want ErrDirty", err)
	}
	for _, want := range []string{"dirty at version " + itoa(latest), "force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Up error %q does not say %q", err, want)
		}
	}
	t.Logf("Up: %v", err)

	err = migrations.Validate(ctx, pool)
	if !errors.Is(err, migrations.ErrDirty) {
		t.Fatalf("Validate on dirty database: got %v, want ErrDirty", err)
	}
	t.Logf("Validate: %v", err)
}

func TestNewerVersionRefused(t *testing.T) {
	ctx, url, pool := setup(t)
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("Up: %v", err)
	}
	latest, _ := migrations.Latest()
	exec(t, ctx, pool, `UPDATE schema_migrations SET version = 999`)
	want := "database is at version 999, this build knows up to " + itoa(latest) + ": deploy a newer build"

	err := migrations.Up(ctx, url)
	if !errors.Is(err, migrations.ErrNewerSchema) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Up on newer database: got %v, want ErrNewerSchema saying %q", err, want)
	}
	err = migrations.Validate(ctx, pool)
	if !errors.Is(err, migrations.ErrNewerSchema) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Validate on newer database: got %v, want ErrNewerSchema saying %q", err, want)
	}
}

func TestValidateReportsEveryDifference(t *testing.T) {
	ctx, url, pool := setup(t)
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("Up: %v", err)
	}
	exec(t, ctx, pool, `ALTER TABLE decisions DROP COLUMN rate_bp`)
	exec(t, ctx, pool, `ALTER TABLE applications DROP COLUMN workflow_id`)

	err := migrations.Validate(ctx, pool)
	if err == nil {
		t.Fatal("Validate succeeded with dropped columns")
	}
	for _, want := range []string{
		"schema check: ",
		"table decisions lacks column rate_bp",
		"table applications lacks column workflow_id",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not say %q", err, want)
		}
	}
	t.Logf("Validate: %v", err)
}

func TestConcurrentUp(t *testing.T) {
	ctx, url, pool := setup(t)
	const starters = 3
	var wg sync.WaitGroup
	errs := make([]error, starters)
	for i := range starters {
		wg.Go(func() { errs[i] = migrations.Up(ctx, url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("starter %d: Up: %v", i, err)
		}
	}
	if err := migrations.Validate(ctx, pool); err != nil {
		t.Fatalf("Validate after concurrent Up: %v", err)
	}
}

func TestBadURL(t *testing.T) {
	err := migrations.Up(context.Background(), "mysql://u:secret@h/db")
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Up with a bad URL: got %v, want an error naming DATABASE_URL without the password", err)
	}
}

func itoa(v uint) string { return strconv.FormatUint(uint64(v), 10) }
