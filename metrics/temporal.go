// Package metrics exposes loanflow's Prometheus metrics: the Temporal SDK's
// own metrics (through SDKHandler) next to loanflow's per-agency ones, served
// on one /metrics endpoint.
package metrics

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// timerBuckets are the upper bounds, in seconds, of SDK latency histograms.
var timerBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// SDKHandler is a client.MetricsHandler that turns the SDK's counters,
// gauges and timers into Prometheus series. The SDK uses one metric name with
// varying tag sets, which a plain prometheus.CounterVec cannot hold, so series
// are kept here and exported with the union of each family's label names
// (absent labels are empty).
type SDKHandler struct {
	store *sdkStore
	tags  map[string]string
}

type sdkStore struct {
	mu       sync.Mutex
	families map[string]*family
}

type kind int

const (
	counterKind kind = iota
	gaugeKind
	timerKind
)

type family struct {
	kind   kind
	series map[string]*series
}

type series struct {
	labels  map[string]string
	value   float64  // counter total or gauge value
	buckets []uint64 // timer: non-cumulative counts per bucket, +Inf last
	count   uint64
	sum     float64
}

var _ client.MetricsHandler = (*SDKHandler)(nil)
var _ prometheus.Collector = (*SDKHandler)(nil)

// NewSDKHandler returns an empty handler; register it on a prometheus.Registerer
// and pass it as client.Options.MetricsHandler.
func NewSDKHandler() *SDKHandler {
	return &SDKHandler{store: &sdkStore{families: map[string]*family{}}}
}

// WithTags returns a handler whose metrics carry tags in addition to h's.
func (h *SDKHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return &SDKHandler{store: h.store, tags: merged}
}

// Counter returns the counter name with h's tags.
func (h *SDKHandler) Counter(name string) client.MetricsCounter {
	s := h.store.get(name, counterKind, h.tags)
	return counterFunc(func(d int64) { h.store.update(func() { s.value += float64(d) }) })
}

// Gauge returns the gauge name with h's tags.
func (h *SDKHandler) Gauge(name string) client.MetricsGauge {
	s := h.store.get(name, gaugeKind, h.tags)
	return gaugeFunc(func(v float64) { h.store.update(func() { s.value = v }) })
}

// Timer returns the timer name with h's tags, exported as a histogram in seconds.
func (h *SDKHandler) Timer(name string) client.MetricsTimer {
	s := h.store.get(name, timerKind, h.tags)
	return timerFunc(func(d time.Duration) {
		sec := d.Seconds()
		i := sort.SearchFloat64s(timerBuckets, sec)
		h.store.update(func() {
			s.buckets[i]++
			s.count++
			s.sum += sec
		})
	})
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

func (st *sdkStore) update(fn func()) {
	st.mu.Lock()
	fn()
	st.mu.Unlock()
}

func (st *sdkStore) get(name string, k kind, tags map[string]string) *series {
	name = sanitize(name)
	key := labelKey(tags)
	st.mu.Lock()
	defer st.mu.Unlock()
	f := st.families[name]
	if f == nil {
		f = &family{kind: k, series: map[string]*series{}}
		st.families[name] = f
	}
	s := f.series[key]
	if s == nil {
		s = &series{labels: tags}
		if k == timerKind {
			s.buckets = make([]uint64, len(timerBuckets)+1)
		}
		f.series[key] = s
	}
	return s
}

// Describe sends nothing: the SDK's metric names are only known once used,
// which makes this an unchecked collector.
func (h *SDKHandler) Describe(chan<- *prometheus.Desc) {}

// Collect exports every series.
func (h *SDKHandler) Collect(ch chan<- prometheus.Metric) {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	for name, f := range h.store.families {
		var names []string
		for _, s := range f.series {
			for k := range s.labels {
				if !slices.Contains(names, k) {
					names = append(names, k)
				}
			}
		}
		sort.Strings(names)
		labelNames := make([]string, len(names))
		for i, n := range names {
			labelNames[i] = sanitize(n)
		}
		desc := prometheus.NewDesc("temporal_"+name, "Temporal SDK metric "+name+".", labelNames, nil)
		for _, s := range f.series {
			values := make([]string, len(names))
			for i, n := range names {
				values[i] = s.labels[n]
			}
			var m prometheus.Metric
			var err error
			switch f.kind {
			case counterKind:
				m, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, s.value, values...)
			case gaugeKind:
				m, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, s.value, values...)
			case timerKind:
				cum := make(map[float64]uint64, len(timerBuckets))
				var c uint64
				for i, ub := range timerBuckets {
					c += s.buckets[i]
					cum[ub] = c
				}
				m, err = prometheus.NewConstHistogram(desc, s.count, s.sum, cum, values...)
			}
			if err == nil {
				ch <- m
			}
		}
	}
}

func labelKey(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(tags[k])
		b.WriteByte(0)
	}
	return b.String()
}

// sanitize maps a name onto Prometheus's [a-zA-Z0-9_] alphabet.
func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, name)
}
