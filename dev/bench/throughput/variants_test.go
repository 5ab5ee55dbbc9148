package main

import (
	"maps"
	"strings"
	"testing"
)

func TestParseVariants(t *testing.T) {
	vs, err := parseVariants("default, sticky=0,slots=4/8/16+pg=9,tuner=resource+cpu=0.7+ramp=0s")
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{
		{},
		{"sticky-cache-size": "0"},
		{"loan-workflow-slots": "4", "loan-activity-slots": "8", "loan-local-activity-slots": "16", "pg-max-conns": "9"},
		{"loan-tuner": "resource", "loan-target-cpu": "0.7", "loan-ramp-throttle": "0s"},
	}
	if len(vs) != len(want) {
		t.Fatalf("%d variants, want %d", len(vs), len(want))
	}
	for i, v := range vs {
		if !maps.Equal(v.flags, want[i]) {
			t.Errorf("variant %q: flags %v, want %v", v.name, v.flags, want[i])
		}
	}
	if v, err := parseVariant("slots=32"); err != nil || v.flags["loan-local-activity-slots"] != "32" || v.flags["loan-workflow-slots"] != "32" {
		t.Errorf("slots=32: %v %v, want 32 for each kind", v.flags, err)
	}
	for _, tc := range []struct{ list, want string }{
		{"", `invalid variant "": accepted default, or terms`},
		{"fast", `invalid variant "fast": term "fast": accepted default`},
		{"pool=4", `term "pool=4": accepted default`},
		{"slots=4/4", `term "slots=4/4": accepted slots=N or slots=W/A/L`},
		{"pg=4+pg=8", `invalid variant "pg=4+pg=8": pg is set twice`},
		{"default,default", `"default" is listed twice`},
		// Values are checked as the worker checks its flags.
		{"slots=0", `invalid variant "slots=0": -loan-workflow-slots "0": accepted a whole number from 1 to 10000`},
		{"cpu=0.5", `-loan-target-cpu 0.5: a target is accepted only with -loan-tuner resource`},
		{"sticky=-3", `-sticky-cache-size "-3": accepted a whole number from 0`},
	} {
		if _, err := parseVariants(tc.list); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("-variants %q: error %v, want one containing %q", tc.list, err, tc.want)
		}
	}
}

// A sweep rewrites its own section of the report and keeps the rest; the
// main run keeps the sweep and the notes.
func TestReplaceSection(t *testing.T) {
	doc := docTitle + "\n\nmain table\n\n" + notesHeading + "\n\nnotes\n"
	doc = replaceSection(doc, sweepHeading, "sweep 1\n")
	want := docTitle + "\n\nmain table\n\n" + sweepHeading + "\n\nsweep 1\n\n" + notesHeading + "\n\nnotes\n"
	if doc != want {
		t.Fatalf("inserted:\n%s\nwant:\n%s", doc, want)
	}
	doc = replaceSection(doc, sweepHeading, "sweep 2\n")
	if strings.Contains(doc, "sweep 1") || !strings.Contains(doc, sweepHeading+"\n\nsweep 2\n\n"+notesHeading) {
		t.Fatalf("replaced:\n%s", doc)
	}
	if i := firstIndex(doc, sweepHeading+"\n", notesHeading); doc[i:] != sweepHeading+"\n\nsweep 2\n\n"+notesHeading+"\n\nnotes\n" {
		t.Fatalf("kept by the main run from %d: %q", i, doc[i:])
	}
	if got := replaceSection(docTitle+"\n", sweepHeading, "s"); got != docTitle+"\n\n"+sweepHeading+"\n\ns\n" {
		t.Fatalf("appended: %q", got)
	}
}

// The sticky cache's counters are kept by the worker's task queue, through
// tags set at different levels; other metrics are dropped.
func TestStickyCounts(t *testing.T) {
	s := newStickyCounts()
	lfWorker := s.handler().WithTags(map[string]string{"task_queue": "loan"})
	lf := lfWorker.WithTags(map[string]string{"workflow_type": "LoanApplicationWorkflow"})
	lf.Counter("temporal_sticky_cache_hit").Inc(2)
	before := s.snapshot()
	lf.Counter("temporal_sticky_cache_hit").Inc(1)
	lf.Counter("temporal_sticky_cache_miss").Inc(1)
	lfWorker.Counter("temporal_sticky_cache_total_forced_eviction").Inc(4)
	s.handler().WithTags(map[string]string{"task_queue": "bench.raw"}).Counter("temporal_sticky_cache_total_forced_eviction").Inc(3)
	lf.Counter("temporal_workflow_completed").Inc(5)
	got := s.since(before)
	if stickyText(got["loan"]) != "1 / 1 / 4" || stickyText(got["bench.raw"]) != "0 / 0 / 3" {
		t.Fatalf("counts %v", got)
	}
}
