// Package testutil holds the small helpers shared by the tests of every
// package: Poll, which waits for a condition, and Golden, which compares
// output with a golden file. It is test support only; import it from
// _test.go files (and from other test-support packages such as
// internal/servertest), never from production code.
//
// Importing testutil registers the -update flag on the test binary:
//
//	go test ./chain/ -update
//
// rewrites the golden files of the package's tests from their current
// output. Review every golden diff (git diff '*.golden') before committing
// it: the golden files are the specification of the output they pin, and
// -update accepts whatever the code prints today.
package testutil

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// update is the -update flag: Golden rewrites golden files instead of
// comparing with them.
var update = flag.Bool("update", false, "rewrite golden files from the current output (review the diff before committing)")

// Updating reports whether the test binary runs with -update, for tests
// that must not rewrite a golden file twice (several cases sharing one
// file).
func Updating() bool { return *update }

// Poll calls cond until it returns true and fails the test (t.Fatalf,
// naming what) if it still returns false after timeout. cond is called
// at once, then with a pause that grows from 1 ms to 10 ms between calls;
// it runs on the calling goroutine, which must be the test's own
// goroutine (t.Fatalf).
func Poll(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	const minInterval, maxInterval = time.Millisecond, 10 * time.Millisecond
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	interval := minInterval
	for !cond() {
		tick := time.NewTimer(interval)
		select {
		case <-deadline.C:
			tick.Stop()
			if cond() { // one last look: the condition may have just come true
				return
			}
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
		interval = min(2*interval, maxInterval)
	}
}

// Golden compares got with the golden file at path (by convention
// testdata/<name>.golden, relative to the package directory), reporting
// a difference with t.Errorf. With -update it writes got to path instead
// (creating the directory): review the resulting diff before committing.
func Golden(tb testing.TB, path string, got []byte) {
	tb.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatalf("create %s: %v", filepath.Dir(path), err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatalf("write golden %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read golden %s: %v (run the test with -update to create it, then review it)", path, err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s differs from the golden file (-want +got):\n%s", path, diff)
	}
}
