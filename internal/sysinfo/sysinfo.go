// Package sysinfo reports how busy the machine is, for the Temporal SDK's
// resource-based slot suppliers (worker.SysInfoProvider): CPU and memory in
// use as fractions from 0 to 1. It reads Linux's /proc, or the process's
// cgroup (v2) when that has a CPU quota or a memory limit, so a container is
// judged against its own share and not the host's.
//
// The SDK's own provider (go.temporal.io/sdk/contrib/sysinfo, on gopsutil) is
// not used: its version for SDK 1.50 cannot be verified against the checksum
// database through the module proxy this project builds with.
package sysinfo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/worker"
)

// minRefresh is how long a reading is reused: the SDK asks on every slot it
// considers, far more often than the kernel's counters move.
const minRefresh = 100 * time.Millisecond

// Provider is a worker.SysInfoProvider over /proc and cgroup v2. The SDK asks
// for one per process: every resource-based supplier should share it.
type Provider struct {
	proc, cgroup string // roots, replaced in tests

	mu       sync.Mutex
	at       time.Time // when cpu and mem were read
	cpu, mem float64
	prev     cpuSample
}

var _ worker.SysInfoProvider = (*Provider)(nil)

// cpuSample is a cumulative CPU reading: busy and total time of the machine
// (jiffies), or, in a cgroup with a quota, the cgroup's usage and the wall
// time it may use (microseconds).
type cpuSample struct {
	busy, total float64
}

// New returns a provider of this machine's readings, or an error when it
// cannot read them (not Linux, or /proc not mounted): a resource-based tuner
// would then issue no slot beyond its minimum.
func New() (*Provider, error) {
	p := &Provider{proc: "/proc", cgroup: "/sys/fs/cgroup"}
	if err := p.refresh(time.Now()); err != nil {
		return nil, fmt.Errorf("read CPU and memory use for the resource-based tuner (Linux /proc needed): %w", err)
	}
	return p, nil
}

// CpuUsage is the CPU in use since the previous reading, 0 to 1 of the
// machine or of the cgroup's quota.
func (p *Provider) CpuUsage(*worker.SysInfoContext) (float64, error) {
	if err := p.maybeRefresh(); err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cpu, nil
}

// MemoryUsage is the memory in use, 0 to 1 of the machine's (memory not
// available to new work) or of the cgroup's limit.
func (p *Provider) MemoryUsage(*worker.SysInfoContext) (float64, error) {
	if err := p.maybeRefresh(); err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mem, nil
}

func (p *Provider) maybeRefresh() error {
	now := time.Now()
	p.mu.Lock()
	fresh := now.Sub(p.at) < minRefresh
	p.mu.Unlock()
	if fresh {
		return nil
	}
	return p.refresh(now)
}

func (p *Provider) refresh(now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.at) < minRefresh {
		return nil // another caller refreshed meanwhile
	}
	s, err := p.readCPU(now)
	if err != nil {
		return err
	}
	mem, err := p.readMemory()
	if err != nil {
		return err
	}
	if !p.at.IsZero() {
		p.cpu = usage(p.prev, s)
	}
	p.prev, p.mem, p.at = s, mem, now
	return nil
}

// usage is the busy share of the time between two samples, within 0..1.
func usage(a, b cpuSample) float64 {
	dt := b.total - a.total
	if dt <= 0 {
		return 0
	}
	return min(max((b.busy-a.busy)/dt, 0), 1)
}

// readCPU reads the cgroup's usage against its quota when it has one,
// otherwise the machine's busy and total jiffies.
func (p *Provider) readCPU(now time.Time) (cpuSample, error) {
	if quota, ok := p.cgroupCPUQuota(); ok {
		b, err := os.ReadFile(filepath.Join(p.cgroup, "cpu.stat"))
		if err == nil {
			if used, ok := statField(b, "usage_usec"); ok {
				return cpuSample{busy: used, total: float64(now.UnixMicro()) * quota}, nil
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(p.proc, "stat"))
	if err != nil {
		return cpuSample{}, err
	}
	return parseProcStat(b)
}

// cgroupCPUQuota is the cgroup's CPU quota in cores (cpu.max "quota period"),
// when it has one.
func (p *Provider) cgroupCPUQuota() (float64, bool) {
	b, err := os.ReadFile(filepath.Join(p.cgroup, "cpu.max"))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0, false
	}
	quota, err1 := strconv.ParseFloat(f[0], 64)
	period, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || quota <= 0 || period <= 0 {
		return 0, false
	}
	return quota / period, true
}

// parseProcStat reads the first line of /proc/stat: user nice system idle
// iowait irq softirq steal (guest time is already in user). Idle and iowait
// are not busy.
func parseProcStat(b []byte) (cpuSample, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return cpuSample{}, fmt.Errorf("/proc/stat: first line %q is not the cpu total", line)
	}
	var s cpuSample
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return cpuSample{}, fmt.Errorf("/proc/stat: cpu field %d %q is not a number", i+1, v)
		}
		s.total += n
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	return s, nil
}

// readMemory reads the cgroup's memory against its limit when it has one,
// otherwise the machine's memory that is not available (MemAvailable).
func (p *Provider) readMemory() (float64, error) {
	if lim, err := os.ReadFile(filepath.Join(p.cgroup, "memory.max")); err == nil {
		limit, err := strconv.ParseFloat(strings.TrimSpace(string(lim)), 64)
		if err == nil && limit > 0 {
			if cur, err := os.ReadFile(filepath.Join(p.cgroup, "memory.current")); err == nil {
				if used, err := strconv.ParseFloat(strings.TrimSpace(string(cur)), 64); err == nil {
					return min(max(used/limit, 0), 1), nil
				}
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(p.proc, "meminfo"))
	if err != nil {
		return 0, err
	}
	return parseMeminfo(b)
}

// parseMeminfo is 1 − MemAvailable/MemTotal.
func parseMeminfo(b []byte) (float64, error) {
	total, ok1 := statField(b, "MemTotal:")
	avail, ok2 := statField(b, "MemAvailable:")
	if !ok1 || !ok2 || total <= 0 {
		return 0, errors.New("/proc/meminfo: MemTotal or MemAvailable missing")
	}
	return min(max(1-avail/total, 0), 1), nil
}

// statField is the number after key at the start of a line ("key value ...").
func statField(b []byte, key string) (float64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == key {
			n, err := strconv.ParseFloat(f[1], 64)
			return n, err == nil
		}
	}
	return 0, false
}
