package local_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"loanflow/internal/testenv"
	"loanflow/loan"
	"loanflow/workflows"
	"loanflow/workflows/loanclient"
)

// Re-applying an id with different content is refused, naming the field,
// whether the first run is still running or finished; the same content
// attaches to the first run.
func TestDuplicateStartWithDifferentContentRefused(t *testing.T) {
	env := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app := loan.Application{ApplicationID: "dupc-" + testenv.ID(), CustomerID: "C00000078", Amount: 10_000_000, TermMonths: 24}
	first, existing, err := loanclient.Start(ctx, env.Client, app, workflows.Options{})
	if err != nil || existing {
		t.Fatalf("first start: existing=%v, %v", existing, err)
	}
	check := func(when string) {
		t.Helper()
		other := app
		other.Amount = 20_000_000
		if _, _, err := loanclient.Start(ctx, env.Client, other, workflows.Options{}); !errors.Is(err, loanclient.ErrDifferentContent) ||
			!strings.Contains(err.Error(), "amount existing 10000000, given 20000000") {
			t.Fatalf("%s: different amount: got %v, want ErrDifferentContent naming the amount", when, err)
		}
		same, existing, err := loanclient.Start(ctx, env.Client, app, workflows.Options{})
		if err != nil || !existing || same.GetID() != first.GetID() {
			t.Fatalf("%s: same content: existing=%v, %v", when, existing, err)
		}
	}
	check("while running")
	var res loan.Result
	if err := first.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	check("after it finished")
	if n, _ := env.Store.CountApplications(ctx); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}
