package main

// Idle cost (storebench watch --hold): with every watcher still
// connected and no writes, how much CPU each server burns per second of
// wall time. It samples the same process counters as the server cost of
// a put run (servercost.go) at the start and the end of the hold.

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// idleCost is each server's CPU-seconds per second over a hold.
type idleCost struct {
	seconds float64
	addrs   []string
	perSec  []float64
}

// measureIdle waits for hold, sampling every server before and after. A
// failed scrape is reported on stderr and gives no figures.
func measureIdle(ctx context.Context, e *env, hold time.Duration) *idleCost {
	probe, err := newCostProbe(e.opts)
	if probe == nil {
		if err == nil {
			err = fmt.Errorf("no HTTP addresses to scrape (--http-addrs off)")
		}
		fmt.Fprintln(e.stderr, "storebench: idle cost not measured:", err)
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 2*e.opts.timeout)
	before, err := probe.sample(sctx)
	cancel()
	if err != nil {
		fmt.Fprintln(e.stderr, "storebench: idle cost not measured:", err)
		return nil
	}
	start := time.Now()
	t := time.NewTimer(hold)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return nil
	}
	sctx, cancel = context.WithTimeout(ctx, 2*e.opts.timeout)
	defer cancel()
	after, err := probe.sample(sctx)
	if err != nil {
		fmt.Fprintln(e.stderr, "storebench: idle cost not measured:", err)
		return nil
	}
	ic, err := idleFigures(probe.addrs, before, after, time.Since(start))
	if err != nil {
		fmt.Fprintln(e.stderr, "storebench:", err)
		return nil
	}
	return ic
}

// idleFigures divides each server's CPU growth by the elapsed wall time.
func idleFigures(addrs []string, before, after []procSample, elapsed time.Duration) (*idleCost, error) {
	if len(before) != len(addrs) || len(after) != len(addrs) || elapsed <= 0 {
		return nil, fmt.Errorf("idle cost: %d addresses, %d and %d samples over %s", len(addrs), len(before), len(after), elapsed)
	}
	ic := &idleCost{seconds: elapsed.Seconds(), addrs: addrs}
	for i := range addrs {
		d := after[i].CPUSeconds - before[i].CPUSeconds
		if d < 0 {
			return nil, fmt.Errorf("idle cost: CPU counter of %s went down (restarted?)", addrs[i])
		}
		ic.perSec = append(ic.perSec, math.Round(d/elapsed.Seconds()*10000)/10000)
	}
	return ic, nil
}

// addTo puts the figures into a result's extra map (nothing when ic is
// nil).
func (ic *idleCost) addTo(extra map[string]any) {
	if ic == nil {
		return
	}
	extra["idle_secs"] = math.Round(ic.seconds*10) / 10
	per := map[string]float64{}
	for i, a := range ic.addrs {
		per[a] = ic.perSec[i]
	}
	extra["idle_cpu_s_per_s"] = per
	extra["idle_cpu_s_per_s_max"] = slices.Max(ic.perSec)
}
