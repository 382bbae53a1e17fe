package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/chain"
)

func TestSummarize(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		in   []time.Duration
		want Latency
	}{
		"empty": {in: nil, want: Latency{}},
		"one":   {in: []time.Duration{3 * time.Millisecond}, want: Latency{Count: 1, Mean: 3, P50: 3, P90: 3, P99: 3, P999: 3, Max: 3}},
		"1..100 ms": {in: func() []time.Duration {
			var ds []time.Duration
			for i := 100; i >= 1; i-- { // unsorted on purpose
				ds = append(ds, time.Duration(i)*time.Millisecond)
			}
			return ds
		}(), want: Latency{Count: 100, Mean: 50.5, P50: 50, P90: 90, P99: 99, P999: 100, Max: 100}},
		"sub-millisecond": {in: []time.Duration{1500 * time.Microsecond, 500 * time.Microsecond},
			want: Latency{Count: 2, Mean: 1, P50: 0.5, P90: 1.5, P99: 1.5, P999: 1.5, Max: 1.5}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, summarize(tc.in)); diff != "" {
				t.Errorf("summarize() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBenchEntry(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 100, 256, 4096} {
		raw := benchEntry("bench", 7, 42, size)
		if size >= 100 && (len(raw) > size || len(raw) < size-16) {
			t.Errorf("benchEntry(size %d) is %d bytes", size, len(raw))
		}
		e, err := chain.DecodeEntry(raw)
		if err != nil {
			t.Fatalf("DecodeEntry(benchEntry(%d)): %v", size, err)
		}
		if err := chain.Prepare(e); err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		if e.GetName() != "bench-7" {
			t.Errorf("name = %q, want bench-7", e.GetName())
		}
	}
	if bytes.Equal(benchEntry("b", 1, 1, 256), benchEntry("b", 1, 2, 256)) {
		t.Error("two writes of one key are identical; the server would skip the second")
	}
}

func TestResolverEntryRevRoundTrip(t *testing.T) {
	t.Parallel()
	e, err := chain.DecodeEntry(resolverEntry("bench-chain-3", "w17"))
	if err != nil {
		t.Fatalf("DecodeEntry: %v", err)
	}
	if err := chain.Prepare(e); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	res, err := chain.Compile(chain.CompileRequest{
		ServiceName: "bench-chain-3", EvaluateInNamespace: chain.DefaultNamespace,
		EvaluateInDatacenter: chain.DefaultDatacenter, EvaluateInTrustDomain: chain.ValidationTrustDomain,
		UseInDatacenter: chain.DefaultDatacenter, Entries: chain.NewMemStore(e),
	})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	raw, err := json.Marshal(res.Chain)
	if err != nil {
		t.Fatal(err)
	}
	if got := revOf(raw); got != "w17" {
		t.Errorf("revOf(compiled chain) = %q, want w17 (chain %s)", got, raw)
	}
	if got := revOf([]byte(`{"x":1}`)); got != "" {
		t.Errorf("revOf(no rev) = %q, want empty", got)
	}
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	p := &progress{label: "put", total: 200}
	got := p.line(50, 2*time.Second)
	for _, want := range []string{"put [", "#######.", " 25%", "50/200", "25/s", "2s"} {
		if !strings.Contains(got, want) {
			t.Errorf("line() = %q, want it to contain %q", got, want)
		}
	}
	// Disabled: no goroutine, no output.
	var buf bytes.Buffer
	q := newProgress(&buf, false, "x", 10)
	q.add(10)
	q.stop()
	q.stop()
	if buf.Len() != 0 {
		t.Errorf("disabled progress wrote %q", buf.String())
	}
}

func TestRunFlagErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		args    []string
		wantErr string
		isHelp  bool
	}{
		"no command":        {args: nil, wantErr: "no command"},
		"help":              {args: []string{"help"}, isHelp: true},
		"unknown command":   {args: []string{"frob"}, wantErr: `unknown command "frob"`},
		"bad clients":       {args: []string{"put", "--clients", "0"}, wantErr: "--clients"},
		"bad to":            {args: []string{"put", "--to", "nowhere"}, wantErr: "--to"},
		"bad total":         {args: []string{"put", "--total", "0"}, wantErr: "--total"},
		"bad consistency":   {args: []string{"get", "--consistency", "eventual", "--addr", "127.0.0.1:1", "--to", "any"}, wantErr: "--consistency"},
		"chains > watchers": {args: []string{"watch", "--watchers", "2", "--chains", "3"}, wantErr: "--chains"},
		"extra args":        {args: []string{"put", "extra"}, wantErr: "unexpected arguments"},
		"bad scale":         {args: []string{"suite", "--scale", "0"}, wantErr: "--scale"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errOut)
			if tc.isHelp {
				if !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("run(%q) = %v, want flag.ErrHelp", tc.args, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("run(%q) = %v, want error containing %q", tc.args, err, tc.wantErr)
			}
		})
	}
}

func TestPrintTableAndJSON(t *testing.T) {
	t.Parallel()
	r := newResult("put, 1 client(s)", "put", map[string]any{"clients": 1},
		[]time.Duration{time.Millisecond, 2 * time.Millisecond}, errorCounter{"Unavailable": 1}, time.Second)
	if r.Requests != 3 || r.Errors != 1 || r.RPS != 2 {
		t.Errorf("newResult: requests %d errors %d rps %v; want 3, 1, 2", r.Requests, r.Errors, r.RPS)
	}
	var buf bytes.Buffer
	printTable(&buf, []*Result{r})
	if !strings.Contains(buf.String(), "| put, 1 client(s) | 3 | 1 | 2 |") {
		t.Errorf("printTable:\n%s", buf.String())
	}
	buf.Reset()
	printResult(&buf, r)
	if !strings.Contains(buf.String(), "Unavailable=1") {
		t.Errorf("printResult:\n%s", buf.String())
	}
	path := t.TempDir() + "/r.json"
	if err := writeJSON(path, []*Result{r}); err != nil {
		t.Fatal(err)
	}
}
