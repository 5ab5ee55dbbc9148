// Command agencysim serves the simulated credit agencies (KCB, NICE, MyData,
// app scraping) and their admin API over HTTP, for the dev mode and
// docker-compose.
//
//	agencysim -addr :8090 -stats-every 10s
//
// The address may also come from AGENCYSIM_ADDR; the flag wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"loanflow/agency"
	"loanflow/dev/agencysim"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, os.Args[1:]); err != nil {
		log.Error("agencysim failed", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	addr := os.Getenv("AGENCYSIM_ADDR")
	if addr == "" {
		addr = ":8090"
	}
	fs := flag.NewFlagSet("agencysim", flag.ContinueOnError)
	fs.StringVar(&addr, "addr", addr, "listen address (env AGENCYSIM_ADDR)")
	statsEvery := fs.Duration("stats-every", 10*time.Second, "log each agency's counters this often when they change; 0 disables")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *statsEvery < 0 {
		return fmt.Errorf("invalid -stats-every %s: accepted 0 or a positive duration", *statsEvery)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	sim := agencysim.New(nil)
	sim.SetLogger(log)
	base, stop, err := sim.Start(ctx, addr)
	if err != nil {
		return err
	}
	for _, n := range agency.All {
		cfg, _ := sim.Config(n)
		log.Info("agency simulated", "agency", n, "url", base+"/"+string(n), "capacity", cfg.Capacity,
			"median_service_time", cfg.MedianServiceTime.String(), "queue_limit", cfg.QueueLimit,
			"queue_timeout", cfg.QueueTimeout.String())
	}
	log.Info("agencysim listening", "addr", addr, "base_url", base)

	if *statsEvery > 0 {
		go logStats(ctx, log, sim, *statsEvery)
	}
	<-ctx.Done()
	log.Info("agencysim shutting down")
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("agencysim stopped")
	return nil
}

// logStats logs the counters of every agency whose request count moved.
func logStats(ctx context.Context, log *slog.Logger, sim *agencysim.Server, every time.Duration) {
	last := map[agency.Name]int64{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, n := range agency.All {
			st := sim.Stats(n)
			if st.Requests == last[n] {
				continue
			}
			last[n] = st.Requests
			log.Info("agency stats", "agency", n, "requests", st.Requests, "ok", st.OK, "overload", st.Overload,
				"errors", st.Errors, "abandoned", st.Abandoned, "client_errors", st.ClientErrors,
				"in_service", st.InService, "queued", st.Queued, "max_in_service", st.MaxInService,
				"mean_service_time", st.MeanServiceTime().String())
		}
	}
}
