package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func putResult(name string, rps, p50, cpu float64) *Result {
	return &Result{Name: name, Requests: 100, RPS: rps, Latency: Latency{Count: 100, P50: p50, P99: 2 * p50},
		ServerCost: &ServerCost{Writes: 100, Total: ServerFigures{CPUMicros: cpu, AllocBytes: 1000, Allocs: 10}}}
}

func writeResults(t *testing.T, name string, rs ...*Result) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := writeJSON(p, rs); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompareMediansAndAims(t *testing.T) {
	const big, one = "put, 100 client(s), 512 B", "put, 1 client(s), 512 B"
	old1 := writeResults(t, "old1.json", putResult(big, 1000, 40, 450), putResult(one, 250, 3.0, 2900))
	old2 := writeResults(t, "old2.json", putResult(big, 1200, 44, 430), putResult(one, 260, 3.2, 3000))
	old3 := writeResults(t, "old3.json", putResult(big, 900, 50, 470), putResult(one, 240, 3.4, 3100))
	new1 := writeResults(t, "new1.json", putResult(big, 1600, 20, 300), putResult(one, 300, 2.5, 2000))
	new2 := writeResults(t, "new2.json", putResult(big, 1800, 22, 310), putResult(one, 310, 2.7, 2100))
	// A benchmark only the new side ran is left out.
	new3 := writeResults(t, "new3.json", putResult("put, 64 client(s), 256 B", 1, 1, 1))

	var out, errb bytes.Buffer
	err := runCompare([]string{"--old", old1 + "," + old2 + "," + old3, "--new", new1 + "," + new2 + "," + new3}, &out, &errb)
	if err != nil {
		t.Fatalf("compare: %v (stderr %s)", err, errb.String())
	}
	s := out.String()
	for _, want := range []string{
		// Medians: old 1000 (of 900, 1000, 1200), new 1600 (lower middle of 1600, 1800).
		"| " + big + " | req/s | 1000 | 1600 | 1.60 |",
		"| " + big + " | server CPU µs/write | 450 | 300 | 0.67 |",
		"| " + one + " | p50 ms | 3.20 | 2.50 | 0.78 |",
		"| put 100 clients 512 B: throughput >= 1.5x old | 1.60 | met |",
		"| put 1 client 512 B: p50 >= 25 % lower than old | 0.78 | missed |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "64 client") {
		t.Errorf("a benchmark only one side ran is in the table:\n%s", s)
	}
	if strings.Contains(s, "4 KiB") {
		t.Errorf("an aim without figures is printed:\n%s", s)
	}
}

func TestCompareBadInput(t *testing.T) {
	good := writeResults(t, "good.json", putResult("a", 1, 1, 1))
	other := writeResults(t, "other.json", putResult("b", 1, 1, 1))
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--old", good}, "needs --old and --new"},
		{[]string{"--old", good, "--new", bad}, "bad.json: not a storebench --json file"},
		{[]string{"--old", good, "--new", filepath.Join(t.TempDir(), "missing.json")}, "missing.json"},
		{[]string{"--old", good, "--new", other}, "no benchmark in common"},
		{[]string{"--old", good, "--new", good, "extra"}, "unexpected arguments: extra"},
	} {
		var out, errb bytes.Buffer
		err := runCompare(tc.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("compare %v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

func TestAbsoluteAims(t *testing.T) {
	w := &Result{Name: "watch delivery, 1000 watchers / 10 chains", Requests: 10, Extra: map[string]any{"put_to_last_p99_ms": 12.5}}
	p := putResult("put, 100 client(s), 512 B", 1000, 40, 320)
	var out bytes.Buffer
	printAbsoluteAims(&out, []*Result{p, w})
	s := out.String()
	for _, want := range []string{
		"| server CPU per write, 100 clients 512 B, summed over the servers | < 350 µs | 320 | met |",
		"| put to last of 1,000 watchers, p99 | < 10.00 ms | 12.50 | missed |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("aims lack %q:\n%s", want, s)
		}
	}
	out.Reset()
	printAbsoluteAims(&out, []*Result{putResult("put, 1 client(s), 256 B", 1, 1, 1)})
	if out.Len() != 0 {
		t.Errorf("aims printed without their benchmarks: %q", out.String())
	}
}
