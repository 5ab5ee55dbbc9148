package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"loanflow/config"
	"loanflow/loan"
)

// -h asks for help: the flags are printed and the command succeeds (exit 0),
// as with the top-level "help".
func TestSubcommandHelpExitsZero(t *testing.T) {
	for _, cmd := range [][]string{{"apply", "-h"}, {"load", "--help"}, {"status", "-h"}, {"find", "-h"}} {
		t.Run(strings.Join(cmd, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(context.Background(), cmd, &out, &errOut); err != nil {
				t.Fatalf("%v: %v (want success, exit 0)", cmd, err)
			}
			if !strings.Contains(out.String()+errOut.String(), "starter "+cmd[0]) {
				t.Fatalf("%v printed no usage: %q %q", cmd, out.String(), errOut.String())
			}
		})
	}
}

// Numbers are decimal digits only: Go's flag package would read 0x1C9C380
// as 30000000 and 1_000 as 1000, a surprise for an amount of money.
func TestNonDecimalNumbersRefused(t *testing.T) {
	base := []string{"apply", "--customer", "C00012345", "--amount", "30000000", "--term", "36"}
	for _, tc := range []struct{ flag, value string }{
		{"--amount", "0x1C9C380"},
		{"--amount", "1e7"},
		{"--amount", "+5000000"},
		{"--amount", "30_000_000"},
		{"--amount", "0o1234567"},
		{"--term", "0x24"},
		{"--term", "3_6"},
	} {
		t.Run(tc.flag+"="+tc.value, func(t *testing.T) {
			t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
			args := append([]string{}, base...)
			for i := range args {
				if args[i] == tc.flag {
					args[i+1] = tc.value
				}
			}
			err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("want a usage error (exit 2), got %v", err)
			}
			for _, want := range []string{strings.TrimLeft(tc.flag, "-"), tc.value, "accepted"} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q does not contain %q", err, want)
				}
			}
		})
	}
	for _, tc := range []struct{ flag, value string }{{"--count", "0x10"}, {"--customers", "1_0"}} {
		err := run(context.Background(), []string{"load", tc.flag, tc.value}, &bytes.Buffer{}, &bytes.Buffer{})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.value) || !strings.Contains(err.Error(), strings.TrimLeft(tc.flag, "-")) {
			t.Fatalf("load %s %s: want a usage error naming the flag and value, got %v", tc.flag, tc.value, err)
		}
	}
}

func TestLoadRateMustBeAFiniteNumberInRange(t *testing.T) {
	for _, v := range []string{"NaN", "nan", "Inf", "+Inf", "-Inf", "0", "-3", "0x10", "10001"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
			err := run(context.Background(), []string{"load", "--count", "1", "--rate", v}, &bytes.Buffer{}, &bytes.Buffer{})
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("--rate %s: want a usage error (exit 2), got %v", v, err)
			}
			for _, want := range []string{"rate", v, "accepted"} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("--rate %s: error %q does not contain %q", v, err, want)
				}
			}
		})
	}
}

// A load in which an application failed exits non-zero (1), after its
// summary, so a script or CI job notices.
func TestLoadFailsWhenAnApplicationFailed(t *testing.T) {
	c := &mocks.Client{}
	ok, failed := &mocks.WorkflowRun{}, &mocks.WorkflowRun{}
	for _, r := range []*mocks.WorkflowRun{ok, failed} {
		r.On("GetID").Return("loan-x")
		r.On("GetRunID").Return("r")
	}
	ok.On("Get", mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		*args.Get(1).(*loan.Result) = loan.Result{ApplicationID: "x", Status: loan.StatusDisbursed}
	}).Return(nil)
	failed.On("Get", mock.Anything, mock.Anything).Return(errors.New("workflow timed out"))
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(ok, nil).Once()
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(failed, nil).Once()
	c.On("Close").Return()
	dial := func() (client.Client, config.Temporal, error) { return c, config.Temporal{UIURL: "http://ui"}, nil }

	var out bytes.Buffer
	err := cli{dial: dial}.run(context.Background(), []string{"load", "--count", "2", "--rate", "100"}, &out, &bytes.Buffer{})
	var ue usageError
	if err == nil || errors.As(err, &ue) {
		t.Fatalf("load with a failed application: %v, want an error (exit 1)\n%s", err, out.String())
	}
	if !strings.Contains(err.Error(), "1 of 2 applications failed") {
		t.Fatalf("error %q does not say how many failed", err)
	}
	if !strings.Contains(out.String(), "outcomes:") {
		t.Fatalf("no summary before the error:\n%s", out.String())
	}
}
