package callstats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// maxRelErr is the documented quantile error bound, √growth − 1, plus a hair
// for rounding bounds to whole nanoseconds.
var maxRelErr = math.Sqrt(HistogramGrowth) - 1 + 1e-6

func TestHistogramGrowthMatchesParameters(t *testing.T) {
	want := math.Pow(float64(HistogramMax/HistogramMin), 1.0/HistogramLogBuckets)
	if math.Abs(HistogramGrowth-want) > 1e-9 {
		t.Fatalf("HistogramGrowth = %.12f, want %.12f", HistogramGrowth, want)
	}
	if maxRelErr > 0.12 {
		t.Fatalf("error bound %.4f is above the 12%% promised", maxRelErr)
	}
	for i := 1; i <= HistogramLogBuckets; i++ {
		if bound(i) <= bound(i-1) {
			t.Fatalf("bound(%d) = %s is not above bound(%d) = %s", i, bound(i), i-1, bound(i-1))
		}
	}
}

func TestBucketOf(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{-time.Second, 0},
		{0, 0},
		{999 * time.Microsecond, 0},
		{time.Millisecond, 1},
		{bound(1) - 1, 1},
		{bound(1), 2},
		{bound(25) - 1, 25},
		{bound(25), 26},
		{HistogramMax - 1, HistogramLogBuckets},
		{HistogramMax, numBuckets - 1},
		{time.Hour, numBuckets - 1},
	}
	for _, tc := range tests {
		if got := bucketOf(tc.d); got != tc.want {
			t.Errorf("bucketOf(%s) = %d, want %d", tc.d, got, tc.want)
		}
	}
	// Every duration in [1ms, 60s) lands in the log bucket whose bounds hold it.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		d := time.Duration(float64(HistogramMin) * math.Exp(rng.Float64()*math.Log(float64(HistogramMax/HistogramMin))))
		if d >= HistogramMax {
			continue
		}
		i := bucketOf(d)
		if i < 1 || i > HistogramLogBuckets || d < bound(i-1) || d >= bound(i) {
			t.Fatalf("bucketOf(%s) = %d with bounds [%s, %s)", d, i, bound(i-1), bound(i))
		}
	}
}

func TestQuantileOfOneValue(t *testing.T) {
	tests := []struct {
		d      time.Duration
		want   time.Duration // exact expected value; 0 means "within the error bound of d"
		reason string
	}{
		{0, HistogramMin / 2, "underflow reads half of HistogramMin"},
		{300 * time.Microsecond, HistogramMin / 2, "underflow"},
		{time.Millisecond, 0, "first log bucket"},
		{3 * time.Millisecond, 0, ""},
		{20 * time.Millisecond, 0, "a typical agency median"},
		{137 * time.Millisecond, 0, ""},
		{500 * time.Millisecond, 0, "client timeout"},
		{7 * time.Second, 0, ""},
		{59 * time.Second, 0, "last log bucket"},
		{2 * time.Minute, HistogramMax, "overflow reads HistogramMax"},
	}
	for _, tc := range tests {
		var h Histogram
		h.Observe(tc.d)
		for _, q := range []float64{0, 0.5, 0.99, 1} {
			got := h.Quantile(q)
			if tc.want != 0 {
				if got != tc.want {
					t.Errorf("%s (%s): Quantile(%v) = %s, want %s", tc.d, tc.reason, q, got, tc.want)
				}
				continue
			}
			if rel := math.Abs(float64(got-tc.d)) / float64(tc.d); rel > maxRelErr {
				t.Errorf("%s: Quantile(%v) = %s, off by %.1f%%", tc.d, q, got, 100*rel)
			}
		}
		if h.Mean() != max(0, tc.d) || h.Count() != 1 {
			t.Errorf("%s: Mean = %s, Count = %d", tc.d, h.Mean(), h.Count())
		}
	}
}

// Quantiles of a spread of latencies stay within the error bound of the
// exact nearest-rank quantiles.
func TestQuantilesOfDistributions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dists := map[string]func() time.Duration{
		"lognormal around 20ms": func() time.Duration {
			return time.Duration(float64(20*time.Millisecond) * math.Exp(0.6*rng.NormFloat64()))
		},
		"uniform 5ms-2s": func() time.Duration {
			return 5*time.Millisecond + time.Duration(rng.Int64N(int64(2*time.Second)))
		},
		"bimodal fast and timed out": func() time.Duration {
			if rng.IntN(10) == 0 {
				return 500*time.Millisecond + time.Duration(rng.Int64N(int64(10*time.Millisecond)))
			}
			return 15*time.Millisecond + time.Duration(rng.Int64N(int64(10*time.Millisecond)))
		},
	}
	for name, draw := range dists {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			vals := make([]time.Duration, 5000)
			var sum time.Duration
			for i := range vals {
				vals[i] = max(HistogramMin, draw())
				h.Observe(vals[i])
				sum += vals[i]
			}
			slices.Sort(vals)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
				exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
				got := h.Quantile(q)
				if rel := math.Abs(float64(got-exact)) / float64(exact); rel > maxRelErr {
					t.Errorf("p%v = %s, exact %s, off by %.1f%%", 100*q, got, exact, 100*rel)
				}
			}
			if h.Mean() != sum/time.Duration(len(vals)) {
				t.Errorf("Mean = %s, want %s", h.Mean(), sum/time.Duration(len(vals)))
			}
		})
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 || empty.Count() != 0 {
		t.Fatalf("empty histogram: p50 %s mean %s count %d", empty.Quantile(0.5), empty.Mean(), empty.Count())
	}
	var a, b Histogram
	for range 90 {
		a.Observe(10 * time.Millisecond)
	}
	for range 10 {
		b.Observe(time.Second)
	}
	a.Merge(b)
	if a.Count() != 100 {
		t.Fatalf("Count = %d, want 100", a.Count())
	}
	if p := a.Quantile(0.9); p > 12*time.Millisecond {
		t.Errorf("p90 = %s, want about 10ms (the 90th of 100 is still fast)", p)
	}
	if p := a.Quantile(0.91); p < 880*time.Millisecond {
		t.Errorf("p91 = %s, want about 1s", p)
	}
}
