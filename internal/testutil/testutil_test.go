package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a testing.TB that records failures; Fatalf ends the calling
// goroutine, as testing's does.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatal  bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}

// run calls f with a recorder on its own goroutine and returns the
// recorder once f has returned or called Fatalf.
func run(t *testing.T, f func(r *recorder)) *recorder {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestPoll(t *testing.T) {
	t.Parallel()
	calls := 0
	r := run(t, func(r *recorder) {
		Poll(r, 5*time.Second, "the third call", func() bool { calls++; return calls == 3 })
	})
	if r.fatal || len(r.errors) != 0 || calls != 3 {
		t.Errorf("Poll of a condition true on the third call: %d calls, failures %q", calls, r.errors)
	}

	start := time.Now()
	r = run(t, func(r *recorder) {
		Poll(r, 50*time.Millisecond, "the impossible", func() bool { return false })
	})
	if !r.fatal || len(r.errors) != 1 || !strings.Contains(r.errors[0], "waiting for the impossible") {
		t.Errorf("Poll of a condition never true: failures %q (fatal %v), want one naming what it waited for", r.errors, r.fatal)
	}
	if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
		t.Errorf("Poll gave up after %s, before its 50ms timeout", elapsed)
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	if Updating() {
		t.Skip("with -update Golden writes instead of comparing")
	}
	path := filepath.Join(t.TempDir(), "x.golden")
	if err := os.WriteFile(path, []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, func(r *recorder) { Golden(r, path, []byte("one\n")) }); len(r.errors) != 0 {
		t.Errorf("Golden of matching output failed: %q", r.errors)
	}
	if r := run(t, func(r *recorder) { Golden(r, path, []byte("two\n")) }); r.fatal || len(r.errors) != 1 || !strings.Contains(r.errors[0], "two") {
		t.Errorf("Golden of different output: failures %q (fatal %v), want one error with the diff", r.errors, r.fatal)
	}
	missing := filepath.Join(t.TempDir(), "missing.golden")
	if r := run(t, func(r *recorder) { Golden(r, missing, []byte("x")) }); !r.fatal || !strings.Contains(r.errors[0], "-update") {
		t.Errorf("Golden with no golden file: failures %q (fatal %v), want a fatal error mentioning -update", r.errors, r.fatal)
	}
}
