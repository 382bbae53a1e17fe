package main

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseProcSample(t *testing.T) {
	const full = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.34
go_memstats_alloc_bytes_total 1.5e+09
go_memstats_alloc_bytes 123456
go_memstats_mallocs_total{foo="bar"} 99
go_memstats_mallocs_total 2.5e+07 1700000000000
go_memstats_frees_total 2e+07
`
	tests := []struct {
		name    string
		text    string
		want    procSample
		wantErr string
	}{
		{name: "all three", text: full, want: procSample{CPUSeconds: 12.34, AllocBytes: 1.5e9, Mallocs: 2.5e7}},
		{name: "missing two", text: "process_cpu_seconds_total 1\n", wantErr: "metrics lack go_memstats_alloc_bytes_total, go_memstats_mallocs_total"},
		{name: "empty", text: "", wantErr: "metrics lack"},
		{name: "bad value", text: strings.Replace(full, "12.34", "abc", 1), wantErr: `metric process_cpu_seconds_total: bad value "abc"`},
		{name: "negative", text: strings.Replace(full, "12.34", "-1", 1), wantErr: "bad value"},
		{name: "NaN", text: strings.Replace(full, "12.34", "NaN", 1), wantErr: "bad value"},
		{name: "no value", text: strings.Replace(full, "process_cpu_seconds_total 12.34", "process_cpu_seconds_total", 1), wantErr: "malformed line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcSample(strings.NewReader(tc.text))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCostPerWrite(t *testing.T) {
	addrs := []string{"a:1", "b:1"}
	before := []procSample{{CPUSeconds: 10, AllocBytes: 1000, Mallocs: 100}, {CPUSeconds: 5, AllocBytes: 0, Mallocs: 0}}
	tests := []struct {
		name    string
		after   []procSample
		writes  int
		want    *ServerCost
		wantErr string
	}{
		{
			name:   "two servers",
			after:  []procSample{{CPUSeconds: 10.5, AllocBytes: 3000, Mallocs: 300}, {CPUSeconds: 5.25, AllocBytes: 1000, Mallocs: 50}},
			writes: 1000,
			want: &ServerCost{Writes: 1000, Servers: []ServerFigures{
				{Addr: "a:1", CPUMicros: 500, AllocBytes: 2, Allocs: 0.2},
				{Addr: "b:1", CPUMicros: 250, AllocBytes: 1, Allocs: 0.05},
			}, Total: ServerFigures{Addr: "sum", CPUMicros: 750, AllocBytes: 3, Allocs: 0.25}},
		},
		{
			name:   "idle servers",
			after:  before,
			writes: 10,
			want: &ServerCost{Writes: 10, Servers: []ServerFigures{{Addr: "a:1"}, {Addr: "b:1"}},
				Total: ServerFigures{Addr: "sum"}},
		},
		{name: "no writes", after: before, writes: 0, wantErr: "no successful writes"},
		{name: "restart", after: []procSample{{CPUSeconds: 11, AllocBytes: 2000, Mallocs: 200}, {CPUSeconds: 1}}, writes: 5, wantErr: "counters of b:1 went down"},
		{name: "sample count", after: before[:1], writes: 5, wantErr: "2 addresses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := costPerWrite(addrs, before, tc.after, tc.writes)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			round(got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// round drops float noise below 1e-9 so DeepEqual compares figures.
func round(c *ServerCost) {
	r := func(f *ServerFigures) {
		for _, v := range []*float64{&f.CPUMicros, &f.AllocBytes, &f.Allocs} {
			*v = math.Round(*v*1e9) / 1e9
		}
	}
	for i := range c.Servers {
		r(&c.Servers[i])
	}
	r(&c.Total)
}

func TestMetricsAddrs(t *testing.T) {
	tests := []struct {
		http, grpc string
		want       []string
		wantErr    string
	}{
		{http: "", grpc: "127.0.0.1:8502,127.0.0.1:8512", want: []string{"127.0.0.1:8503", "127.0.0.1:8513"}},
		{http: "h1:9000, h2:9001", grpc: "x:1", want: []string{"h1:9000", "h2:9001"}},
		{http: "off", grpc: "x:1", want: nil},
		{http: "", grpc: "nohost", wantErr: `--addr "nohost"`},
		{http: "", grpc: "h:65535", wantErr: "below 65535"},
		{http: "bad", grpc: "x:1", wantErr: `--http-addrs "bad"`},
	}
	for _, tc := range tests {
		got, err := metricsAddrs(tc.http, tc.grpc)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("metricsAddrs(%q, %q) err = %v, want %q", tc.http, tc.grpc, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("metricsAddrs(%q, %q) = %v, %v; want %v", tc.http, tc.grpc, got, err, tc.want)
		}
	}
}

func TestPrintServerCost(t *testing.T) {
	c := &ServerCost{Writes: 10, Servers: []ServerFigures{{Addr: "a:1", CPUMicros: 400, AllocBytes: 29500, Allocs: 334}},
		Total: ServerFigures{Addr: "sum", CPUMicros: 400, AllocBytes: 29500, Allocs: 334}}
	var buf bytes.Buffer
	printCostTable(&buf, []*Result{{Name: "get"}, {Name: "put", ServerCost: c}})
	if want := "| put | 10 | 400 | 29500 | 334 |"; !strings.Contains(buf.String(), want) || strings.Contains(buf.String(), "| get |") {
		t.Errorf("printCostTable:\n%s\nwant the put row %q only", buf.String(), want)
	}
	buf.Reset()
	printCostTable(&buf, []*Result{{Name: "get"}})
	if buf.Len() != 0 {
		t.Errorf("printCostTable without costs printed %q", buf.String())
	}
	buf.Reset()
	markLeader(c, []string{"a:0"}, "a:0")
	printResult(&buf, &Result{Name: "put", ServerCost: c})
	if !strings.Contains(buf.String(), "sum") || !strings.Contains(buf.String(), "a:1 (leader)") || !strings.Contains(buf.String(), "CPU    400.0 µs") {
		t.Errorf("printResult:\n%s", buf.String())
	}
}

func TestIdleFigures(t *testing.T) {
	addrs := []string{"a:1", "b:1"}
	before := []procSample{{CPUSeconds: 10}, {CPUSeconds: 3}}
	after := []procSample{{CPUSeconds: 10.6}, {CPUSeconds: 3.3}}
	ic, err := idleFigures(addrs, before, after, 30*time.Second)
	if err != nil {
		t.Fatalf("idleFigures: %v", err)
	}
	if ic.perSec[0] != 0.02 || ic.perSec[1] != 0.01 {
		t.Fatalf("idleFigures per second = %v, want [0.02 0.01]", ic.perSec)
	}
	after[1].CPUSeconds = 2
	if _, err := idleFigures(addrs, before, after, 30*time.Second); err == nil {
		t.Fatal("idleFigures with a counter that went down: no error")
	}
}
