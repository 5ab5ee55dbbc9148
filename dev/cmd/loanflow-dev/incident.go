package main

import (
	"context"
	"fmt"
	"time"

	"loanflow/agency"
	"loanflow/breaker"
	"loanflow/dev/agencysim"
	"loanflow/dev/local"
)

// demoBreakers are the default breakers with a 5 s cool-down, so a scripted
// incident recovers within a demo batch.
func demoBreakers() map[string]breaker.Config {
	out := make(map[string]breaker.Config, len(agency.All))
	for _, n := range agency.All {
		c := breaker.DefaultConfig()
		c.CoolDown = 5 * time.Second
		out[string(n)] = c
	}
	return out
}

// runIncident degrades the simulated agencies while a batch of the given
// length runs: MyData fails from 15% of the batch, KCB is down from 40%, and
// both recover at 65%.
func runIncident(ctx context.Context, sim *agencysim.Server, batch time.Duration) {
	steps := []struct {
		at   float64
		what string
		do   func()
	}{
		{0.15, "mydata starts failing (every answer 500)", func() { _ = sim.SetFaults(agency.MyData, agencysim.Faults{ErrorRate: 1}) }},
		{0.40, "kcb goes down (every answer 503)", func() { _ = sim.SetFaults(agency.KCB, agencysim.Faults{Down: true}) }},
		{0.65, "mydata and kcb recover", func() {
			_ = sim.SetFaults(agency.MyData, agencysim.Faults{})
			_ = sim.SetFaults(agency.KCB, agencysim.Faults{})
		}},
	}
	start := time.Now()
	for _, s := range steps {
		select {
		case <-ctx.Done():
			_ = sim.SetFaults(agency.MyData, agencysim.Faults{})
			_ = sim.SetFaults(agency.KCB, agencysim.Faults{})
			return
		case <-time.After(time.Until(start.Add(time.Duration(s.at * float64(batch))))):
		}
		fmt.Printf("\n[incident +%4.1fs] %s\n", time.Since(start).Seconds(), s.what)
		s.do()
	}
}

// printBreakerEvents lists the breaker transitions recorded since the batch began.
func printBreakerEvents(ctx context.Context, s *local.Stack, since time.Time) {
	events, err := s.App().BreakerEvents(ctx, since)
	if err != nil {
		fmt.Printf("breaker events: %v\n", err)
		return
	}
	fmt.Println("breaker transitions (breaker_events):")
	for _, e := range events {
		fmt.Printf("  +%5.1fs  %-12s %-9s -> %-9s %s\n", e.At.Sub(since).Seconds(), e.Breaker, e.From, e.To, e.Reason)
	}
}
