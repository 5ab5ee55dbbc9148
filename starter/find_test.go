package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestFindRefusesBadCustomer(t *testing.T) {
	for _, args := range [][]string{{}, {"--customer", "12345"}, {"--customer", "C00012345", "--limit", "0"}} {
		err := run(context.Background(), append([]string{"find"}, args...), &bytes.Buffer{}, &bytes.Buffer{})
		var ue usageError
		if !errors.As(err, &ue) {
			t.Fatalf("find %v: want a usage error, got %v", args, err)
		}
	}
}

// Without keys the starter refuses to talk to Temporal at all, naming the
// variables to set, rather than sending plaintext.
func TestNoKeysNoDial(t *testing.T) {
	t.Chdir(t.TempDir()) // no .dev/ here
	for _, v := range []string{"LOANFLOW_CODEC_KEYS", "LOANFLOW_CODEC_KEY_FILE", "LOANFLOW_SEARCH_KEYS", "LOANFLOW_SEARCH_KEY_FILE"} {
		t.Setenv(v, "")
	}
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
	err := run(context.Background(), []string{"status", "app-1"}, &bytes.Buffer{}, &bytes.Buffer{})
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "LOANFLOW_CODEC_KEYS") {
		t.Fatalf("want a usage error naming LOANFLOW_CODEC_KEYS, got %v", err)
	}
}
