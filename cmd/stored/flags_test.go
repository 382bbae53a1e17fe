package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

// TestUsageHidesTestFlags: `stored -h` (and the usage printed after a bad
// flag) lists the operator flags but none of the --test-* ones.
func TestUsageHidesTestFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"--no-such-flag"}, {"--node", "n7", "-h"}} {
		var stderr bytes.Buffer
		_, _, err := parseFlags(args, &stderr)
		if err == nil {
			t.Fatalf("parseFlags(%q) succeeded, want an error", args)
		}
		if h := errors.Is(err, flag.ErrHelp); h != (args[len(args)-1] != "--no-such-flag") {
			t.Errorf("parseFlags(%q) error = %v", args, err)
		}
		out := stderr.String()
		if strings.Contains(out, testFlagPrefix) {
			t.Errorf("usage after %q mentions %q:\n%s", args, testFlagPrefix, out)
		}
		for _, want := range []string{"Usage of stored:", "-node string", "-pprof-addr string", `(default "dc1")`} {
			if !strings.Contains(out, want) {
				t.Errorf("usage after %q lacks %q:\n%s", args, want, out)
			}
		}
	}
}

// TestHiddenTestFlagsParse: the hidden --test-* flags still parse and
// take effect through parseFlags.
func TestHiddenTestFlagsParse(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	cfg, _, err := parseFlags([]string{
		"--node", "n1",
		"--test-raft-dial-map", "127.0.0.1:1=127.0.0.1:9",
		"--test-raft-tuning", "heartbeat=300ms,trailing-logs=32",
		"--test-disk-stall-file", t.TempDir() + "/stall",
	}, &stderr)
	if err != nil {
		t.Fatalf("parseFlags: %v (stderr %q)", err, stderr.String())
	}
	if got := cfg.Raft.DialOverride("127.0.0.1:1"); got != "127.0.0.1:9" {
		t.Errorf("DialOverride = %q, want 127.0.0.1:9", got)
	}
	if cfg.Raft.HeartbeatTimeout != 300*time.Millisecond || cfg.Raft.TrailingLogs != 32 {
		t.Errorf("tuning: heartbeat %s, trailing logs %d; want 300ms, 32", cfg.Raft.HeartbeatTimeout, cfg.Raft.TrailingLogs)
	}
	if cfg.Raft.LogWriteHook == nil {
		t.Error("--test-disk-stall-file installed no log write hook")
	}
	if _, _, err := parseFlags([]string{"--test-raft-dial-map", "nonsense"}, &stderr); err == nil {
		t.Error("a bad --test-raft-dial-map was accepted")
	}
}
