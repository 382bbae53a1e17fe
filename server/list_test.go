package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// bigResolver is a valid service-resolver of about 32 KiB, the most Meta
// holds (64 values of 512 bytes), like the ~30 KB entries of the issue.
func bigResolver(name string) string {
	meta := make([]string, 0, 64)
	for i := range 64 {
		meta = append(meta, fmt.Sprintf("%q:%q", fmt.Sprintf("k%02d", i), strings.Repeat("x", 500)))
	}
	return fmt.Sprintf(`{"Kind":"service-resolver","Name":%q,"ConnectTimeout":"5s","Meta":{%s}}`, name, strings.Join(meta, ","))
}

// TestPagedListThroughAFollower is issue 14, item 2, at test scale: a kind
// whose entries together pass the legacy cap. An unpaged List fails with
// LIST_TOO_LARGE (before: one huge message past the client's limit, and
// the leader's memory with it); the paged List, read linearizably through a
// follower, returns every entry exactly once, in pages within the byte cap.
func TestPagedListThroughAFollower(t *testing.T) {
	t.Parallel()
	const (
		n         = 40
		entrySize = 32 << 10
		pageBytes = 128 << 10
	)
	c := servertest.NewCluster(t, 3, func(cfg *server.Config) {
		cfg.RPC.List.PageBytes = pageBytes
		cfg.RPC.List.MaxLegacyBytes = 512 << 10
	})
	cl := c.Client(c.Leader())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		if _, err := cl.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(bigResolver(fmt.Sprintf("svc-%02d", i)))}); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
	}
	follower := c.Client(c.Followers()[0])
	consistent := &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_CONSISTENT}

	_, err := follower.List(ctx, &chainstorev1.ListRequest{Kind: "service-resolver", Options: consistent})
	if status.Code(err) != codes.ResourceExhausted || api.ErrorReason(err) != api.ReasonListTooLarge {
		t.Errorf("unpaged List of %d x %d KiB = %v, want ResourceExhausted LIST_TOO_LARGE", n, entrySize>>10, err)
	} else {
		t.Logf("unpaged List: %v", err)
	}

	for _, namesOnly := range []bool{false, true} {
		seen := map[string]int{}
		pages := 0
		req := &chainstorev1.ListRequest{Kind: "service-resolver", Options: consistent, NamesOnly: namesOnly}
		err := follower.ListPages(ctx, req, func(resp *chainstorev1.ListResponse) error {
			pages++
			if size := proto.Size(resp); size > pageBytes+4096 {
				t.Errorf("page %d is %d bytes, over the %d-byte cap", pages, size, pageBytes)
			}
			if resp.GetMeta().GetServedBy() != c.Leader().Name() {
				t.Errorf("page %d served by %q, want the leader (linearizable via the follower)", pages, resp.GetMeta().GetServedBy())
			}
			for _, e := range resp.GetEntries() {
				seen[e.GetName()]++
				if namesOnly != (len(e.GetEntry()) == 0) {
					t.Errorf("entry %s: body of %d bytes with names_only=%v", e.GetName(), len(e.GetEntry()), namesOnly)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ListPages(names_only=%v): %v", namesOnly, err)
		}
		if len(seen) != n {
			t.Errorf("names_only=%v: listed %d distinct entries, want %d", namesOnly, len(seen), n)
		}
		for name, k := range seen {
			if k != 1 {
				t.Errorf("names_only=%v: %s listed %d times", namesOnly, name, k)
			}
		}
		if !namesOnly && pages < n*entrySize/pageBytes {
			t.Errorf("%d pages for %d bytes with a %d-byte cap", pages, n*entrySize, pageBytes)
		}
		t.Logf("names_only=%v: %d entries in %d pages", namesOnly, len(seen), pages)
	}

	// A token for another kind is refused.
	first, err := follower.List(ctx, &chainstorev1.ListRequest{Kind: "service-resolver", PageSize: 1, NamesOnly: true})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page = %v, %v; want a token", first, err)
	}
	_, err = follower.List(ctx, &chainstorev1.ListRequest{Kind: "service-router", PageToken: first.GetNextPageToken()})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "page_token") {
		t.Errorf("List with another kind's token = %v, want InvalidArgument naming page_token", err)
	}
}
