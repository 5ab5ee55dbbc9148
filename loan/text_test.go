package loan

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"customer withdrew", 100, "customer withdrew"},
		{"a\x1b[2Jb\r\nc\x00d", 100, "a [2Jb  c d"},
		{"bad \xff utf8", 100, "bad   utf8"},
		{"abcdef", 5, "ab…"},
		{"가나다라", 8, "가…"},
		{"", 10, ""},
	} {
		got := CleanText(tc.in, tc.max)
		if got != tc.want {
			t.Errorf("CleanText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
		if len(got) > tc.max || !utf8.ValidString(got) {
			t.Errorf("CleanText(%q, %d) = %q: %d bytes or invalid UTF-8", tc.in, tc.max, got, len(got))
		}
	}
	if got := CleanText(strings.Repeat("x", 10_000), 500); len(got) > 500 {
		t.Errorf("kept %d bytes, want at most 500", len(got))
	}
}
