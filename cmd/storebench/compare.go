package main

// storebench compare: old binary against new binary. scripts/bench-compare.sh
// runs the same storebench suite against a cluster of each, alternating
// rounds, and hands the JSON files to this command, which prints one table
// of medians and ratios and the relative aims (docs/benchmarks.md,
// "Old against new").

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// maxResultsFile bounds one --json file read by compare.
const maxResultsFile = 64 << 20

// compareRow is one figure of one benchmark, old against new.
type compareRow struct {
	bench, figure string
	old, new      float64
	// lowerIsBetter: latency and cost (a ratio below 1 is a gain).
	lowerIsBetter bool
}

// ratio is new/old, or 0 when old is 0.
func (r compareRow) ratio() float64 {
	if r.old == 0 {
		return 0
	}
	return r.new / r.old
}

// runCompare implements `storebench compare --old A.json[,B.json] --new C.json[,D.json]`.
func runCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("storebench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var oldFiles, newFiles string
	fs.StringVar(&oldFiles, "old", "", "comma-separated --json files of the old binary's runs")
	fs.StringVar(&newFiles, "new", "", "comma-separated --json files of the new binary's runs")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: storebench compare --old A.json[,B.json...] --new C.json[,D.json...]")
		fmt.Fprintln(stderr, "Prints the median of each figure over the runs, old against new, and the relative aims of docs/benchmarks.md.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if oldFiles == "" || newFiles == "" {
		return errors.New("compare needs --old and --new")
	}
	oldRuns, err := readResultFiles(oldFiles)
	if err != nil {
		return err
	}
	newRuns, err := readResultFiles(newFiles)
	if err != nil {
		return err
	}
	rows := compareRuns(oldRuns, newRuns)
	if len(rows) == 0 {
		return errors.New("compare: the old and new files have no benchmark in common")
	}
	printCompare(stdout, rows, len(oldRuns), len(newRuns))
	printRelativeAims(stdout, rows)
	return nil
}

// readResultFiles reads each comma-separated file as the JSON array that
// --json writes.
func readResultFiles(list string) ([][]*Result, error) {
	var runs [][]*Result
	for _, path := range strings.Split(list, ",") {
		path = strings.TrimSpace(path)
		if path == "" {
			continue
		}
		rs, err := readResultFile(path)
		if err != nil {
			return nil, err
		}
		runs = append(runs, rs)
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("no file in %q", list)
	}
	return runs, nil
}

func readResultFile(path string) ([]*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxResultsFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxResultsFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxResultsFile)
	}
	var rs []*Result
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("%s: not a storebench --json file: %w", path, err)
	}
	return rs, nil
}

// figure extracts one number from a result; ok is false when the result
// does not have it.
type figure struct {
	name          string
	lowerIsBetter bool
	get           func(r *Result) (float64, bool)
}

var compareFigures = []figure{
	{"req/s", false, func(r *Result) (float64, bool) { return r.RPS, r.RPS > 0 }},
	{"p50 ms", true, func(r *Result) (float64, bool) { return r.Latency.P50, r.Latency.Count > 0 }},
	{"p99 ms", true, func(r *Result) (float64, bool) { return r.Latency.P99, r.Latency.Count > 0 }},
	{"fan-out p99 ms", true, func(r *Result) (float64, bool) { return extraFloat(r, "fanout_p99_ms") }},
	{"put to last watcher p99 ms", true, func(r *Result) (float64, bool) { return extraFloat(r, "put_to_last_p99_ms") }},
	{"server CPU µs/write", true, serverCPU},
	{"alloc B/write", true, func(r *Result) (float64, bool) {
		if r.ServerCost == nil {
			return 0, false
		}
		return r.ServerCost.Total.AllocBytes, true
	}},
	{"allocs/write", true, func(r *Result) (float64, bool) {
		if r.ServerCost == nil {
			return 0, false
		}
		return r.ServerCost.Total.Allocs, true
	}},
	{"idle CPU-s/s per server (max)", true, func(r *Result) (float64, bool) { return extraFloat(r, "idle_cpu_s_per_s_max") }},
}

// serverCPU is the servers' CPU per write, summed.
func serverCPU(r *Result) (float64, bool) {
	if r.ServerCost == nil {
		return 0, false
	}
	return r.ServerCost.Total.CPUMicros, true
}

// extraFloat reads a number from r.Extra. The figures read this way are
// float64 both straight from a run and after a JSON round trip.
func extraFloat(r *Result, key string) (float64, bool) {
	v, ok := r.Extra[key].(float64)
	return v, ok
}

// compareRuns pairs the benchmarks (by name) present in both sets and
// takes the median of each figure over each set's runs. Benchmarks keep
// the order of the first old run.
func compareRuns(oldRuns, newRuns [][]*Result) []compareRow {
	var names []string
	seen := map[string]bool{}
	for _, run := range oldRuns {
		for _, r := range run {
			if !seen[r.Name] {
				seen[r.Name] = true
				names = append(names, r.Name)
			}
		}
	}
	var rows []compareRow
	for _, name := range names {
		for _, f := range compareFigures {
			o, okO := medianOf(oldRuns, name, f)
			n, okN := medianOf(newRuns, name, f)
			if okO && okN {
				rows = append(rows, compareRow{bench: name, figure: f.name, old: o, new: n, lowerIsBetter: f.lowerIsBetter})
			}
		}
	}
	return rows
}

// medianOf is the median of figure f of benchmark name over runs (the
// lower middle value for an even count, so a figure never mixes runs).
func medianOf(runs [][]*Result, name string, f figure) (float64, bool) {
	var vs []float64
	for _, run := range runs {
		for _, r := range run {
			if r.Name != name || r.Requests == 0 {
				continue
			}
			if v, ok := f.get(r); ok {
				vs = append(vs, v)
			}
		}
	}
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	return vs[(len(vs)-1)/2], true
}

func printCompare(w io.Writer, rows []compareRow, nOld, nNew int) {
	fmt.Fprintf(w, "old against new: medians over %d old and %d new runs\n\n", nOld, nNew)
	fmt.Fprintln(w, "| benchmark | figure | old | new | new/old |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: |")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f |\n", r.bench, r.figure, fmtFigure(r.old), fmtFigure(r.new), r.ratio())
	}
}

func fmtFigure(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.4f", v)
	}
}

// relativeAim is one of issue 12's aims stated against the old binary.
type relativeAim struct {
	text   string
	bench  string // prefix of the benchmark name
	figure string
	// met reports whether new/old meets the aim.
	met func(ratio float64) bool
}

var relativeAims = []relativeAim{
	{"put 100 clients 512 B: throughput >= 1.5x old", "put, 100 client(s), 512 B", "req/s", func(r float64) bool { return r >= 1.5 }},
	{"put 100 clients 4 KiB: throughput >= 1.5x old", "put, 100 client(s), 4096 B", "req/s", func(r float64) bool { return r >= 1.5 }},
	{"put 1 client 512 B: p50 >= 25 % lower than old", "put, 1 client(s), 512 B", "p50 ms", func(r float64) bool { return r <= 0.75 }},
}

func printRelativeAims(w io.Writer, rows []compareRow) {
	var lines []string
	for _, a := range relativeAims {
		for _, r := range rows {
			if strings.HasPrefix(r.bench, a.bench) && r.figure == a.figure && r.old > 0 {
				verdict := "missed"
				if a.met(r.ratio()) {
					verdict = "met"
				}
				lines = append(lines, fmt.Sprintf("| %s | %.2f | %s |", a.text, r.ratio(), verdict))
				break
			}
		}
	}
	printAimTable(w, "| aim (issue 12, relative) | new/old | |\n| --- | ---: | --- |", lines)
}

// absoluteAim is one of issue 12's aims stated as a fixed bound; the
// suite prints the verdict of each whose benchmark it ran.
type absoluteAim struct {
	text  string
	bench string // exact benchmark name
	get   func(r *Result) (float64, bool)
	bound float64 // the figure must be below it
	unit  string
}

var absoluteAims = []absoluteAim{
	{"server CPU per write, 100 clients 512 B, summed over the servers", "put, 100 client(s), 512 B", serverCPU, 350, "µs"},
	{"put to last of 1,000 watchers, p99", "watch delivery, 1000 watchers / 10 chains",
		func(r *Result) (float64, bool) { return extraFloat(r, "put_to_last_p99_ms") }, 10, "ms"},
	{"idle CPU of the busiest server with 1,000 watchers connected", "watch delivery, 1000 watchers / 10 chains",
		func(r *Result) (float64, bool) { return extraFloat(r, "idle_cpu_s_per_s_max") }, 0.02, "CPU-s/s"},
}

// printAbsoluteAims writes the verdict of every absolute aim whose
// benchmark is among rs (nothing when none is).
func printAbsoluteAims(w io.Writer, rs []*Result) {
	var lines []string
	for _, a := range absoluteAims {
		for _, r := range rs {
			if r.Name != a.bench {
				continue
			}
			v, ok := a.get(r)
			if !ok {
				continue
			}
			verdict := "missed"
			if v < a.bound {
				verdict = "met"
			}
			lines = append(lines, fmt.Sprintf("| %s | < %s %s | %s | %s |", a.text, fmtFigure(a.bound), a.unit, fmtFigure(v), verdict))
		}
	}
	printAimTable(w, "| aim (issue 12) | bound | measured | |\n| --- | ---: | ---: | --- |", lines)
}

// printAimTable writes a blank line, head and the rows (nothing when there
// are no rows).
func printAimTable(w io.Writer, head string, rows []string) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, head)
	for _, l := range rows {
		fmt.Fprintln(w, l)
	}
}
