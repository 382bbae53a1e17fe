package server_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/internal/servertest"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// The integration tests of this package run in-process clusters of full
// servers (internal/servertest). Set CHAINSTORE_TEST_LOG=debug to stream
// the servers' logs to stderr.

func skipInShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("in-process cluster test; skipped with -short")
	}
}

// entries returns every entry a node holds, as "kind/name@modify".
func entries(nd *servertest.Node) []string {
	es, _, _ := nd.Server().FSM().Store().List("")
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s/%s@%d", e.Entry.GetKind(), e.Entry.GetName(), e.ModifyIndex))
	}
	sort.Strings(out)
	return out
}

// ctxFor returns a context ending after d or with the test.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// apply writes a JSON entry and fails the test unless it was applied.
func apply(t *testing.T, c *api.Client, entry string) uint64 {
	t.Helper()
	resp, err := c.Apply(ctxFor(t, 20*time.Second), &chainstorev1.ApplyRequest{Entry: []byte(entry)})
	if err != nil || !resp.GetApplied() {
		t.Fatalf("Apply(%s) = %v, %v", entry, resp, err)
	}
	return resp.GetIndex()
}

// applyIdempotent writes a JSON entry with a plain upsert, retrying when
// the connection to the server it used is lost (codes.Unavailable) or a
// follower lost its connection to the leader after forwarding the write
// (an unknown outcome): a plain upsert of the same entry is idempotent, and
// a retry of one that was applied is answered as applied, so this is what
// a client does after a server crash.
func applyIdempotent(t *testing.T, c *api.Client, entry string) uint64 {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	for {
		resp, err := c.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(entry)})
		switch {
		case err == nil && resp.GetApplied():
			return resp.GetIndex()
		case ctx.Err() == nil && (status.Code(err) == codes.Unavailable || api.ErrorReason(err) == api.ReasonUnknownOutcome):
			t.Logf("Apply(%s): %v; retrying", entry, err)
			select { // back off a little before the retry
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		default:
			t.Fatalf("Apply(%s) = %v, %v", entry, resp, err)
		}
	}
}

func serviceDefaults(name, protocol string) string {
	return fmt.Sprintf(`{"Kind":"service-defaults","Name":%q,"Protocol":%q}`, name, protocol)
}

// keyOf is chain.KeyOf for tests.
func keyOf(kind, name string) chain.Key { return chain.KeyOf(chain.Kind(kind), name) }
