package loan

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := Application{ApplicationID: "app-1", CustomerID: "C00012345", Amount: 10_000_000, TermMonths: 36}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid application refused: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Application)
		field  string
		value  string
	}{
		{"zero amount", func(a *Application) { a.Amount = 0 }, "amount", "0"},
		{"negative amount", func(a *Application) { a.Amount = -5 }, "amount", "-5"},
		{"amount above product max", func(a *Application) { a.Amount = MaxAmount + 1 }, "amount", "100000001"},
		{"term too short", func(a *Application) { a.TermMonths = 5 }, "term_months", "5"},
		{"term too long", func(a *Application) { a.TermMonths = 121 }, "term_months", "121"},
		{"customer id without prefix", func(a *Application) { a.CustomerID = "12345678" }, "customer_id", `"12345678"`},
		{"customer id too short", func(a *Application) { a.CustomerID = "C123" }, "customer_id", `"C123"`},
		{"empty application id", func(a *Application) { a.ApplicationID = "" }, "application_id", `""`},
		{"application id with spaces", func(a *Application) { a.ApplicationID = "a b" }, "application_id", `"a b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := ok
			tc.mutate(&a)
			err := a.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("want *FieldError, got %v", err)
			}
			if fe.Field != tc.field || fe.Value != tc.value {
				t.Fatalf("got field %s value %s, want %s %s", fe.Field, fe.Value, tc.field, tc.value)
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "accepted") {
				t.Fatalf("message %q does not name the field and what is accepted", err)
			}
		})
	}
	edge := ok
	edge.Amount, edge.TermMonths = MaxAmount, MaxTermMonths
	if err := edge.Validate(); err != nil {
		t.Fatalf("product maximums refused: %v", err)
	}
}
