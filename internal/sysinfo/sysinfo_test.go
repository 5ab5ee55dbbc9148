package sysinfo

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A fake /proc: two readings of /proc/stat 100 jiffies apart, 30 of them busy
// (user, system, irq; idle and iowait are not), and meminfo with a quarter
// of the memory available.
func TestProcReadings(t *testing.T) {
	proc, cg := t.TempDir(), t.TempDir()
	p := &Provider{proc: proc, cgroup: cg}
	write(t, proc, "stat", "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5\n")
	write(t, proc, "meminfo", "MemTotal:       1000 kB\nMemFree:   10 kB\nMemAvailable:    250 kB\n")
	t0 := time.Now()
	if err := p.refresh(t0); err != nil {
		t.Fatal(err)
	}
	write(t, proc, "stat", "cpu  120 0 55 860 60 5 0 0 0 0\n")
	if err := p.refresh(t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if p.cpu != 0.3 {
		t.Errorf("cpu %v, want 0.3 (30 busy of 100 jiffies)", p.cpu)
	}
	if p.mem != 0.75 {
		t.Errorf("memory %v, want 0.75 (250 of 1000 kB available)", p.mem)
	}
}

// In a cgroup with a quota of half a core and a memory limit, usage is
// measured against those, not the host's.
func TestCgroupReadings(t *testing.T) {
	proc, cg := t.TempDir(), t.TempDir()
	p := &Provider{proc: proc, cgroup: cg}
	write(t, proc, "stat", "cpu  1 0 0 1 0 0 0 0\n")
	write(t, proc, "meminfo", "MemTotal: 1000 kB\nMemAvailable: 1000 kB\n")
	write(t, cg, "cpu.max", "50000 100000\n")
	write(t, cg, "cpu.stat", "usage_usec 1000000\nuser_usec 1\n")
	write(t, cg, "memory.max", "2000\n")
	write(t, cg, "memory.current", "500\n")
	t0 := time.Now()
	if err := p.refresh(t0); err != nil {
		t.Fatal(err)
	}
	// 250 ms of CPU in one second, against a quota of 0.5 s per second.
	write(t, cg, "cpu.stat", "usage_usec 1250000\n")
	if err := p.refresh(t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if p.cpu < 0.4999 || p.cpu > 0.5001 {
		t.Errorf("cpu %v, want 0.5 of the quota", p.cpu)
	}
	if p.mem != 0.25 {
		t.Errorf("memory %v, want 0.25 of the cgroup's limit", p.mem)
	}
	// No quota ("max"): the machine's figures.
	write(t, cg, "cpu.max", "max 100000\n")
	write(t, cg, "memory.max", "max\n")
	if err := p.refresh(t0.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if p.mem != 0 {
		t.Errorf("memory %v without a cgroup limit, want the machine's 0", p.mem)
	}
}

func TestBadProcIsAnError(t *testing.T) {
	for _, stat := range []string{"", "intr 1 2 3\n", "cpu 1 x 3 4 5\n"} {
		if _, err := parseProcStat([]byte(stat)); err == nil {
			t.Errorf("/proc/stat %q: no error", stat)
		}
	}
	if _, err := parseMeminfo([]byte("MemTotal: 100 kB\n")); err == nil {
		t.Error("meminfo without MemAvailable: no error")
	}
	p := &Provider{proc: t.TempDir(), cgroup: t.TempDir()}
	if err := p.refresh(time.Now()); err == nil {
		t.Error("empty /proc: no error")
	}
}

// On this machine the readings are fractions, and CPU is measured once some
// time has passed.
func TestLiveReadings(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads Linux /proc")
	}
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		// Busy: some CPU is in use while the test waits.
	}
	cpu, err := p.CpuUsage(nil)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := p.MemoryUsage(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cpu <= 0 || cpu > 1 || mem <= 0 || mem > 1 {
		t.Fatalf("cpu %v, memory %v: want both in (0, 1]", cpu, mem)
	}
}
