package main

// Failpoints (internal/failpoint, docs/reliability.md, Crash points): the
// CHAINSTORE_FAILPOINTS environment variable enables points at start-up,
// and the test-only --test-failpoints-file FILE lets a test change them
// while the server runs: on every SIGUSR1 the server reads FILE (the same
// "name=terms;..." syntax; empty turns every point off) and replaces the
// enabled points with it.
//
// Goroutines: watchFailpointFile starts one goroutine that waits for
// SIGUSR1 for the life of the process (it is test-only and owns nothing
// that needs a shutdown).

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/chainstore/chainstore/internal/failpoint"
)

// setupFailpoints enables the points of CHAINSTORE_FAILPOINTS and, when
// file is set, starts the SIGUSR1 watcher.
func setupFailpoints(file string) error {
	if err := failpoint.FromEnv(); err != nil {
		return err
	}
	if file != "" {
		watchFailpointFile(file)
	}
	return nil
}

func watchFailpointFile(path string) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for range sig {
			b, err := os.ReadFile(path)
			if err == nil {
				err = failpoint.Set(strings.TrimSpace(string(b)))
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "stored: --test-failpoints-file: %v\n", err)
				continue
			}
			fmt.Fprintf(os.Stderr, "stored: failpoints now %v\n", failpoint.Enabled())
		}
	}()
}
