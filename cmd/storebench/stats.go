package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/status"
)

// Latency summarises a set of latencies, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// summarize sorts ds in place and computes the summary. Percentiles use
// the nearest-rank method.
func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	rank := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(ds)))) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	return Latency{
		Count: len(ds),
		Mean:  ms(sum / time.Duration(len(ds))),
		P50:   rank(50),
		P90:   rank(90),
		P99:   rank(99),
		P999:  rank(99.9),
		Max:   ms(ds[len(ds)-1]),
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Result is the outcome of one benchmark run.
type Result struct {
	Name     string         `json:"name"`
	Test     string         `json:"test"`
	Params   map[string]any `json:"params"`
	Requests int            `json:"requests"`
	Errors   int            `json:"errors"`
	// ErrorCodes counts errors by gRPC code.
	ErrorCodes map[string]int `json:"error_codes,omitempty"`
	Seconds    float64        `json:"seconds"`
	RPS        float64        `json:"requests_per_sec"`
	Latency    Latency        `json:"latency"`
	// Extra holds test-specific figures (CAS conflicts, watch deliveries).
	Extra map[string]any `json:"extra,omitempty"`
	// ServerCost is the servers' CPU and allocations per committed write
	// (put runs whose servers could be scraped).
	ServerCost *ServerCost `json:"server_cost,omitempty"`
}

// errorCounter counts errors by gRPC code.
type errorCounter map[string]int

func (e errorCounter) add(err error) {
	if st, ok := status.FromError(err); ok {
		e[st.Code().String()]++
		return
	}
	e["other"]++
}

func (e errorCounter) merge(o errorCounter) {
	for k, v := range o {
		e[k] += v
	}
}

func (e errorCounter) total() int {
	n := 0
	for _, v := range e {
		n += v
	}
	return n
}

// printResult writes an etcd-benchmark-style summary.
func printResult(w io.Writer, r *Result) {
	fmt.Fprintf(w, "\n%s\n", r.Name)
	fmt.Fprintf(w, "  Total:        %.4f secs\n", r.Seconds)
	fmt.Fprintf(w, "  Requests:     %d (errors %d)\n", r.Requests, r.Errors)
	fmt.Fprintf(w, "  Requests/sec: %.1f\n", r.RPS)
	l := r.Latency
	fmt.Fprintf(w, "  Latency (ms): mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (n=%d)\n",
		l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max, l.Count)
	if len(r.ErrorCodes) > 0 {
		codes := make([]string, 0, len(r.ErrorCodes))
		for c, n := range r.ErrorCodes {
			codes = append(codes, fmt.Sprintf("%s=%d", c, n))
		}
		sort.Strings(codes)
		fmt.Fprintf(w, "  Errors:       %s\n", strings.Join(codes, " "))
	}
	if r.ServerCost != nil {
		printServerCost(w, r.ServerCost)
	}
	if len(r.Extra) > 0 {
		keys := make([]string, 0, len(r.Extra))
		for k := range r.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-13s %v\n", k+":", r.Extra[k])
		}
	}
}

// printTable writes results as a Markdown table.
func printTable(w io.Writer, rs []*Result) {
	fmt.Fprintln(w, "| benchmark | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.2f | %.2f | %.2f | %.2f |\n",
			r.Name, r.Requests, r.Errors, r.RPS, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	}
}

// writeJSON writes v to path as indented JSON.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
