package main

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxErrLen bounds the last error message a report line repeats.
const maxErrLen = 100

// shares counts, for the current one-second window, the calls each
// backend answered, the calls that failed and the ticks skipped because
// too many calls were in flight. It is safe for concurrent use.
type shares struct {
	mu      sync.Mutex
	fixed   []string // always shown first, in this order
	extra   []string // other names ever seen, sorted; shown after fixed
	counts  map[string]int
	errors  int
	skipped int
	lastErr string
}

func newShares(fixed []string) *shares {
	return &shares{fixed: slices.Clone(fixed), counts: make(map[string]int)}
}

// answered records a call answered by backend name.
func (s *shares) answered(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.fixed, name) {
		if i, found := slices.BinarySearch(s.extra, name); !found {
			s.extra = slices.Insert(s.extra, i, name)
		}
	}
	s.counts[name]++
}

// failed records a failed call and its error message.
func (s *shares) failed(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors++
	s.lastErr = msg
}

// skip records a tick that made no call.
func (s *shares) skip() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skipped++
}

// report returns the line of the window that ends at elapsed since the
// start and starts a new window. Shares are of the answered calls; failed
// calls are counted apart:
//
//	t=12s  v1 90.0%  v2 10.0%  canary 0.0%  errors 0  (n=50)
func (s *shares) report(elapsed time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for _, n := range s.counts {
		total += n
	}
	var b strings.Builder
	fmt.Fprintf(&b, "t=%ds", int(elapsed.Round(time.Second)/time.Second))
	for _, name := range append(slices.Clone(s.fixed), s.extra...) {
		pct := 0.0
		if total > 0 {
			pct = 100 * float64(s.counts[name]) / float64(total)
		}
		fmt.Fprintf(&b, "  %s %.1f%%", name, pct)
	}
	fmt.Fprintf(&b, "  errors %d  (n=%d)", s.errors, total+s.errors)
	if s.skipped > 0 {
		fmt.Fprintf(&b, "  skipped %d", s.skipped)
	}
	if s.errors > 0 && s.lastErr != "" {
		fmt.Fprintf(&b, "  last error: %s", truncate(s.lastErr, maxErrLen))
	}
	clear(s.counts)
	s.errors, s.skipped, s.lastErr = 0, 0, ""
	return b.String()
}

// truncate shortens s to at most n runes, marking the cut with "...".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}
