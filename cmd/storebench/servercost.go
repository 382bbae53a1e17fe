package main

// Server cost of a write run: storebench scrapes every server's
// Prometheus metrics (GET /v1/agent/metrics?format=prometheus on its HTTP
// address) right before and right after the run and divides the growth
// of three process-wide counters by the number of successful writes:
//
//   - process_cpu_seconds_total (user + system CPU of the stored process)
//   - go_memstats_alloc_bytes_total (bytes allocated on the Go heap)
//   - go_memstats_mallocs_total (heap objects allocated)
//
// The counters cover everything a server does in that window (heartbeats,
// the scrape itself), so short runs overstate the cost a little; the CPU
// counter also has the kernel's clock-tick resolution (10 ms per server).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/chainstore/chainstore/api"
)

// Metric names read from each server.
const (
	metricCPU        = "process_cpu_seconds_total"
	metricAllocBytes = "go_memstats_alloc_bytes_total"
	metricMallocs    = "go_memstats_mallocs_total"
)

// maxMetricsBody bounds one scrape's response.
const maxMetricsBody = 16 << 20

// procSample is one server's counters at one instant.
type procSample struct {
	CPUSeconds float64
	AllocBytes float64
	Mallocs    float64
}

// parseProcSample reads the three counters from a Prometheus text
// exposition. Only unlabelled samples count; a missing or malformed one
// is an error naming it.
func parseProcSample(r io.Reader) (procSample, error) {
	want := map[string]*float64{}
	var s procSample
	want[metricCPU], want[metricAllocBytes], want[metricMallocs] = &s.CPUSeconds, &s.AllocBytes, &s.Mallocs
	found := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		dst, ok := want[fields[0]]
		if !ok {
			continue
		}
		if len(fields) < 2 || len(fields) > 3 {
			return procSample{}, fmt.Errorf("metric %s: malformed line %q", fields[0], line)
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return procSample{}, fmt.Errorf("metric %s: bad value %q", fields[0], fields[1])
		}
		*dst = v
		found[fields[0]] = true
	}
	if err := sc.Err(); err != nil {
		return procSample{}, fmt.Errorf("read metrics: %w", err)
	}
	var missing []string
	for name := range want {
		if !found[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return procSample{}, fmt.Errorf("metrics lack %s", strings.Join(missing, ", "))
	}
	return s, nil
}

// ServerFigures is one server's (or the sum's) cost per committed write.
type ServerFigures struct {
	Addr string `json:"addr"`
	// Leader: this server led the cluster at the end of the run (known
	// when --http-addrs lists the servers in --addr's order).
	Leader bool `json:"leader,omitempty"`
	// CPUMicros is server CPU per write, in microseconds.
	CPUMicros float64 `json:"cpu_us_per_write"`
	// AllocBytes and Allocs are heap bytes and objects allocated per write.
	AllocBytes float64 `json:"alloc_bytes_per_write"`
	Allocs     float64 `json:"allocs_per_write"`
}

// ServerCost is the cost of a write run on the servers.
type ServerCost struct {
	// Writes is the run's successful writes (the divisor).
	Writes  int             `json:"writes"`
	Servers []ServerFigures `json:"servers"`
	Total   ServerFigures   `json:"total"`
}

// costPerWrite divides each server's counter growth between before and
// after by writes and sums the servers. A counter that went down means
// the server restarted during the run: an error, not a figure.
func costPerWrite(addrs []string, before, after []procSample, writes int) (*ServerCost, error) {
	if len(before) != len(addrs) || len(after) != len(addrs) {
		return nil, fmt.Errorf("server cost: %d addresses, %d samples before, %d after", len(addrs), len(before), len(after))
	}
	if writes <= 0 {
		return nil, errors.New("server cost: no successful writes")
	}
	n := float64(writes)
	c := &ServerCost{Writes: writes, Total: ServerFigures{Addr: "sum"}}
	for i, a := range addrs {
		b, f := before[i], after[i]
		if f.CPUSeconds < b.CPUSeconds || f.AllocBytes < b.AllocBytes || f.Mallocs < b.Mallocs {
			return nil, fmt.Errorf("server cost: counters of %s went down (did it restart?)", a)
		}
		s := ServerFigures{
			Addr:       a,
			CPUMicros:  (f.CPUSeconds - b.CPUSeconds) * 1e6 / n,
			AllocBytes: (f.AllocBytes - b.AllocBytes) / n,
			Allocs:     (f.Mallocs - b.Mallocs) / n,
		}
		c.Servers = append(c.Servers, s)
		c.Total.CPUMicros += s.CPUMicros
		c.Total.AllocBytes += s.AllocBytes
		c.Total.Allocs += s.Allocs
	}
	return c, nil
}

// markLeader flags the server whose gRPC address (grpcAddrs[i] for
// c.Servers[i]) is leader.
func markLeader(c *ServerCost, grpcAddrs []string, leader string) {
	for i, a := range grpcAddrs {
		if a == leader && i < len(c.Servers) {
			c.Servers[i].Leader = true
		}
	}
}

// metricsAddrs returns the HTTP addresses to scrape: the --http-addrs
// list, nil for "off", or (when empty) each gRPC address with its port
// plus one (scripts/cluster.sh's layout).
func metricsAddrs(httpAddrs, grpcAddrs string) ([]string, error) {
	switch httpAddrs {
	case "off":
		return nil, nil
	case "":
		var out []string
		for _, a := range api.SplitAddrs(grpcAddrs) {
			host, port, err := net.SplitHostPort(a)
			if err != nil {
				return nil, fmt.Errorf("--addr %q: %w (set --http-addrs)", a, err)
			}
			p, err := strconv.Atoi(port)
			if err != nil || p < 1 || p >= 65535 {
				return nil, fmt.Errorf("--addr %q: port must be a number below 65535 to derive --http-addrs", a)
			}
			out = append(out, net.JoinHostPort(host, strconv.Itoa(p+1)))
		}
		return out, nil
	}
	out := api.SplitAddrs(httpAddrs)
	for _, a := range out {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("--http-addrs %q: %w", a, err)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--http-addrs: at least one address is needed (or off)")
	}
	return out, nil
}

// costProbe samples every server's counters.
type costProbe struct {
	addrs  []string
	token  string
	client *http.Client
}

func newCostProbe(o commonOpts) (*costProbe, error) {
	addrs, err := metricsAddrs(o.httpAddrs, o.addrs)
	if err != nil || len(addrs) == 0 {
		return nil, err
	}
	return &costProbe{addrs: addrs, token: o.token, client: &http.Client{Timeout: o.timeout}}, nil
}

// sample scrapes every server once.
func (p *costProbe) sample(ctx context.Context) ([]procSample, error) {
	out := make([]procSample, 0, len(p.addrs))
	for _, a := range p.addrs {
		s, err := p.scrape(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("scrape %s: %w", a, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func (p *costProbe) scrape(ctx context.Context, addr string) (procSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/agent/metrics?format=prometheus", nil)
	if err != nil {
		return procSample{}, err
	}
	if p.token != "" {
		req.Header.Set("X-Consul-Token", p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return procSample{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return procSample{}, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return parseProcSample(io.LimitReader(resp.Body, maxMetricsBody))
}

// measureCost runs fn between two samples of every server and returns
// the cost per successful write that fn reports. A failed scrape is
// reported on stderr and gives no figures; the run itself is unaffected.
func measureCost(ctx context.Context, e *env, fn func() (writes int)) *ServerCost {
	probe, err := newCostProbe(e.opts)
	if probe == nil {
		if err != nil {
			fmt.Fprintln(e.stderr, "storebench: server cost:", err)
		}
		fn()
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 2*e.opts.timeout)
	before, err := probe.sample(sctx)
	cancel()
	writes := fn()
	if err != nil {
		fmt.Fprintln(e.stderr, "storebench: server cost not measured:", err)
		return nil
	}
	sctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 2*e.opts.timeout)
	defer cancel()
	after, err := probe.sample(sctx)
	if err != nil {
		fmt.Fprintln(e.stderr, "storebench: server cost not measured:", err)
		return nil
	}
	c, err := costPerWrite(probe.addrs, before, after, writes)
	if err != nil {
		fmt.Fprintln(e.stderr, "storebench:", err)
		return nil
	}
	if grpcAddrs := api.SplitAddrs(e.opts.addrs); len(grpcAddrs) == len(c.Servers) {
		if leader, err := findLeader(sctx, grpcAddrs, e.opts.timeout, e.opts.token); err == nil {
			markLeader(c, grpcAddrs, leader)
		}
	}
	return c
}

// printServerCost writes the per-server and summed figures.
func printServerCost(w io.Writer, c *ServerCost) {
	fmt.Fprintf(w, "  Server cost per committed write (%d writes; CPU µs, heap bytes, heap objects):\n", c.Writes)
	for _, s := range append(append([]ServerFigures{}, c.Servers...), c.Total) {
		if s.Leader {
			s.Addr += " (leader)"
		}
		fmt.Fprintf(w, "    %-31s CPU %8.1f µs  allocs %10.0f B  %7.1f objects\n", s.Addr, s.CPUMicros, s.AllocBytes, s.Allocs)
	}
}

// printCostTable writes the summed server cost of the results that have
// one as a Markdown table (nothing when none has).
func printCostTable(w io.Writer, rs []*Result) {
	var with []*Result
	for _, r := range rs {
		if r.ServerCost != nil {
			with = append(with, r)
		}
	}
	if len(with) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| benchmark | writes | server CPU µs/write (sum) | alloc B/write (sum) | allocs/write (sum) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
	for _, r := range with {
		t := r.ServerCost.Total
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %.0f |\n", r.Name, r.ServerCost.Writes, t.CPUMicros, t.AllocBytes, t.Allocs)
	}
}
