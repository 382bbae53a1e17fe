package servertest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// failLogLines is how many of a server's last log lines a failed test
// prints: enough to see the last elections, few enough that a CI log that
// keeps only its tail still shows the failure itself.
const failLogLines = 25

// dumpLogsOnFailure registers a cleanup that, if the test failed, prints
// the tail of the server's log and saves all of it to a file.
func dumpLogsOnFailure(tb testing.TB, name string, logs *syncBuffer) {
	tb.Helper()
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("=== last %d log lines of %s (all of them: %s) ===\n%s", failLogLines, name,
				saveLogs(tb, name, logs), tailLines(logs.String(), failLogLines))
		}
	})
}

// saveLogs writes a server's whole log to a file that outlives the test
// and returns its path (or why it could not).
func saveLogs(tb testing.TB, name string, logs *syncBuffer) string {
	tb.Helper()
	dir := filepath.Join(os.TempDir(), "chainstore-test-logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	file := strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name()) + "-" + name + ".log"
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, []byte(logs.String()), 0o644); err != nil {
		return err.Error()
	}
	return path
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testLogger logs to stderr at CHAINSTORE_TEST_LOG's level, or into buf.
func testLogger(name string, buf *syncBuffer) hclog.Logger {
	var w io.Writer = buf
	level := hclog.Debug
	if l := os.Getenv("CHAINSTORE_TEST_LOG"); l != "" {
		w, level = os.Stderr, hclog.LevelFromString(l)
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: w})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers, capped at
// 4 MiB (the oldest half is dropped).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 4<<20 {
		rest := b.buf.Bytes()[b.buf.Len()/2:]
		b.buf = *bytes.NewBuffer(append([]byte("...\n"), rest...))
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
