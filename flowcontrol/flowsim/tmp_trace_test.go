package flowsim

import (
	"testing"
	"time"
)

func TestTmpTrace(t *testing.T) {
	for _, seed := range []uint64{2} {
		sc := scenarios(seed)[1]
		sc.QuantizeLatency, sc.NoMean = true, true
		o := run(t, sc, Policy{Name: "oracle", Oracle: true})
		c := run(t, sc, controller(500*time.Millisecond))
		t.Logf("ratio %.3f", c.Goodput/o.Goodput)
		for _, s := range c.Trace {
			t.Logf("t=%4.0fs cap=%2d limit=%3d in-flight=%3d ok=%4d err=%3d latency=%5.1fms  %s", s.T.Seconds(), s.Capacity, s.Limit, s.InFlight, s.OK, s.Errors, s.LatencyMs, s.Reason)
		}
	}
}
