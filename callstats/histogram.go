package callstats

import (
	"math"
	"time"
)

// Histogram parameters. Between HistogramMin and HistogramMax the buckets grow
// geometrically by HistogramGrowth (60000^(1/50) ≈ 1.246), so a quantile read
// back as the geometric middle of its bucket is within √1.246 − 1 ≈ 11.6% of
// the true value. Below HistogramMin lies one underflow bucket, read as half
// of HistogramMin; at or above HistogramMax lies one overflow bucket, read as
// HistogramMax (a floor, not an estimate).
//
// The bucket index is stored in Redis field names, so changing these values
// makes buckets written before the change (at most BucketTTL old) unreadable.
const (
	HistogramMin        = time.Millisecond
	HistogramMax        = 60 * time.Second
	HistogramLogBuckets = 50
)

// HistogramGrowth is the ratio between the bounds of consecutive log buckets:
// (HistogramMax/HistogramMin)^(1/HistogramLogBuckets), checked by a test.
const HistogramGrowth = 1.246129062952

// numBuckets counts the log buckets plus underflow and overflow.
const numBuckets = HistogramLogBuckets + 2

// bound returns the lower bound of log bucket i+1 (0 ≤ i ≤ HistogramLogBuckets);
// bound(HistogramLogBuckets) is HistogramMax exactly. It is computed rather
// than tabled so the package holds no mutable state; a Redis round trip
// dwarfs the cost.
func bound(i int) time.Duration {
	switch {
	case i <= 0:
		return HistogramMin
	case i >= HistogramLogBuckets:
		return HistogramMax
	}
	return time.Duration(math.Round(float64(HistogramMin) * math.Pow(HistogramGrowth, float64(i))))
}

// bucketOf returns the bucket index of d: 0 for underflow, 1..HistogramLogBuckets
// for the log buckets, numBuckets-1 for overflow. Log bucket i holds
// [bound(i-1), bound(i)).
func bucketOf(d time.Duration) int {
	if d < HistogramMin {
		return 0
	}
	if d >= HistogramMax {
		return numBuckets - 1
	}
	i := int(math.Log(float64(d)/float64(HistogramMin)) / math.Log(HistogramGrowth))
	i = max(0, min(i, HistogramLogBuckets-1))
	// The logarithm may land one off at a bound; the bounds decide.
	for i > 0 && d < bound(i) {
		i--
	}
	for i < HistogramLogBuckets-1 && d >= bound(i+1) {
		i++
	}
	return i + 1
}

// bucketValue is the value a quantile falling in bucket i reads as.
func bucketValue(i int) time.Duration {
	switch {
	case i <= 0:
		return HistogramMin / 2
	case i >= numBuckets-1:
		return HistogramMax
	default:
		return time.Duration(math.Sqrt(float64(bound(i-1)) * float64(bound(i))))
	}
}

// Histogram counts durations in log buckets. The zero value is empty and
// ready to use; histograms of different seconds or workers merge by adding.
type Histogram struct {
	counts [numBuckets]int64
	sum    time.Duration
}

// Observe adds one duration; negative durations count as zero.
func (h *Histogram) Observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(d)]++
	h.sum += d
}

// Merge adds o's counts into h.
func (h *Histogram) Merge(o Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.sum += o.sum
}

// Count is the number of observed durations.
func (h Histogram) Count() int64 {
	var n int64
	for _, c := range h.counts {
		n += c
	}
	return n
}

// Sum is the exact total of the observed durations, to the microsecond when
// read back from Redis.
func (h Histogram) Sum() time.Duration { return h.sum }

// Mean is the exact mean of the observed durations, or 0 when empty.
func (h Histogram) Mean() time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return h.sum / time.Duration(n)
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) by nearest rank: the value of
// the bucket holding the ⌈q·n⌉-th smallest duration. It is within ~11.6% of
// that duration between HistogramMin and HistogramMax; see the constants for
// the two end buckets. An empty histogram reads 0.
func (h Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	rank = max(1, min(rank, n))
	var cum int64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			return bucketValue(i)
		}
	}
	return bucketValue(numBuckets - 1) // not reached: cum ends at n ≥ rank
}
