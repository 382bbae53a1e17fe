package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/testutil"
)

// TestExecGetsEveryChangedService: two services change before the command
// runs (as when they change together, or during a run): the run names both
// (issue 14, item 6: CHAIN_SERVICE named only the latest), and with
// --exec-per-service there is one run for each.
func TestExecGetsEveryChangedService(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		perService bool
		want       []string
	}{
		"coalesced":   {false, []string{"web_api|api|7"}},
		"per service": {true, []string{"web|web|5", "api|api|7"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			log := filepath.Join(t.TempDir(), "exec.log")
			r := newExecRunner(`echo "$CHAIN_SERVICES|$CHAIN_SERVICE|$CHAIN_INDEX" >> `+log, tc.perService, os.Stderr, hclog.NewNullLogger())
			r.trigger(api.ChainEvent{Service: "web", Index: 3, Hash: "h1"})
			r.trigger(api.ChainEvent{Service: "api", Index: 4, Hash: "h2"})
			r.trigger(api.ChainEvent{Service: "web", Index: 5, Hash: "h3"}) // web again: one entry, moved last
			r.trigger(api.ChainEvent{Service: "api", Index: 7, Hash: "h4"})
			r.start(context.Background())
			defer r.stop()
			var got []string
			testutil.Poll(t, 10*time.Second, "the runs", func() bool {
				data, _ := os.ReadFile(log)
				got = strings.Fields(strings.ReplaceAll(string(data), " ", "_"))
				return len(got) >= len(tc.want)
			})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("runs (-want +got):\n%s", diff)
			}
		})
	}
}
