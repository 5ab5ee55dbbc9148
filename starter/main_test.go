package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"loanflow/loan"
)

// Bad input is refused before anything is dialled or written, with a
// message naming the field and what is accepted, as a usage error (exit 2).
func TestApplyRefusesBadInput(t *testing.T) {
	tests := []struct {
		args  []string
		field string
	}{
		{[]string{"--customer", "C00012345", "--amount", "0"}, "amount"},
		{[]string{"--customer", "C00012345", "--amount", "-100"}, "amount"},
		{[]string{"--customer", "C00012345", "--amount", "100000001"}, "amount"},
		{[]string{"--customer", "C00012345", "--amount", "5000000", "--term", "5"}, "term_months"},
		{[]string{"--customer", "C00012345", "--amount", "5000000", "--term", "121"}, "term_months"},
		{[]string{"--customer", "12345", "--amount", "5000000"}, "customer_id"},
		{[]string{"--amount", "5000000"}, "customer_id"},
		{[]string{"--customer", "C00012345", "--amount", "lots"}, "amount"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing listens: a dial would fail differently
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"apply"}, tc.args...), &out, &errOut)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("want a usage error (exit 2), got %v", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

func TestLoadRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--count", "0"}, {"--rate", "0"}, {"--rate", "-3"}} {
		err := run(context.Background(), append([]string{"load"}, args...), &bytes.Buffer{}, &bytes.Buffer{})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), strings.TrimPrefix(args[0], "--")) {
			t.Fatalf("load %v: want a usage error naming the flag, got %v", args, err)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	err := run(context.Background(), []string{"frobnicate"}, &bytes.Buffer{}, &bytes.Buffer{})
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("want a usage error naming the command, got %v", err)
	}
}

func TestBreakerOverrideRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"breaker", "open", "equifax", "--reason", "x"}, "equifax"},
		{[]string{"breaker", "open", "kcb"}, "reason"},
		{[]string{"breaker", "explode", "kcb"}, "explode"},
	} {
		err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: want a usage error naming %q, got %v", tc.args, tc.want, err)
		}
	}
}

// Two loads started in the same second get different application ids.
func TestLoadRunIDsUniqueWithinASecond(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for range 100 {
		id := loadRunID(now)
		if seen[id] {
			t.Fatalf("run id %s drawn twice in the same second", id)
		}
		seen[id] = true
		if err := (loan.Application{ApplicationID: id + "-000001", CustomerID: "C00000001", Amount: loan.MinAmount, TermMonths: 12}).Validate(); err != nil {
			t.Fatalf("run id %s makes invalid application ids: %v", id, err)
		}
	}
}

// An upper-case agency is the agency's breaker: the override signalled
// names it canonically, so no phantom breaker appears.
func TestBreakerOverrideNormalisesTheAgency(t *testing.T) {
	o, err := parseOverride("open", []string{"KCB", "--reason", "maintenance"}, &bytes.Buffer{})
	if err != nil || o.Agency != "kcb" || o.State != "open" {
		t.Fatalf("breaker open KCB gave %+v, %v; want agency kcb", o, err)
	}
	o, err = parseOverride("close", []string{"--reason", "over", "Nice"}, &bytes.Buffer{})
	if err != nil || o.Agency != "nice" || o.State != "closed" {
		t.Fatalf("breaker close Nice gave %+v, %v; want agency nice, closed", o, err)
	}
}
