package api

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// ListPages lists the entries of req.Kind page by page (ListRequest
// page_size/page_token), calling page for each response until the last or
// until page returns an error, which ListPages then returns. req is not
// modified. Only the first page blocks when req's options have a
// min_index; later pages are read with the same consistency and no wait.
// Set req.NamesOnly to leave the bodies out. Memory is bounded by one
// page.
//
// Each page is a separate read: an entry that exists for the whole listing
// is seen exactly once; one created or deleted meanwhile may or may not
// be. A server that predates paging answers the first request with the
// whole list and no token, which ends the listing.
func (c *Client) ListPages(ctx context.Context, req *chainstorev1.ListRequest, page func(*chainstorev1.ListResponse) error) error {
	r, ok := proto.Clone(req).(*chainstorev1.ListRequest)
	if !ok {
		return fmt.Errorf("list %q: clone request", req.GetKind())
	}
	if r.PageSize == 0 {
		r.PageSize = DefaultListPageSize
	}
	for {
		resp, err := c.List(ctx, r)
		if err != nil {
			return err
		}
		if err := page(resp); err != nil {
			return err
		}
		next := resp.GetNextPageToken()
		if next == "" {
			return nil
		}
		if next == r.PageToken {
			return fmt.Errorf("list %q: server returned the same page token twice", r.GetKind())
		}
		r.PageToken = next
		if o := r.GetOptions(); o.GetMinIndex() > 0 {
			r.Options = &chainstorev1.QueryOptions{Consistency: o.GetConsistency()}
		}
	}
}

// DefaultListPageSize is the page size ListPages asks for when the request
// sets none (the server may cap it, and caps every page's bytes).
const DefaultListPageSize = 500
