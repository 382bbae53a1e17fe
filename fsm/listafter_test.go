package fsm

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/chain"
)

// TestListAfter walks a kind and the whole store page by page: every entry
// once, in key order, none of another kind, resuming strictly after the
// given key.
func TestListAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, n := range []string{"b", "A", "c", "a-1"} {
		h.mustUpsert(serviceDefaults(n, "http"))
	}
	h.mustUpsert(resolver("web", nil))
	h.mustUpsert(proxyDefaults("http"))

	walk := func(kind chain.Kind, pageSize int) []string {
		var got []string
		var after chain.Key
		for {
			var page []chain.Key
			h.f.Store().ListAfter(kind, after, func(se *StoredEntry) bool {
				page = append(page, se.Key())
				return len(page) < pageSize
			})
			for _, k := range page {
				got = append(got, k.String())
			}
			if len(page) < pageSize {
				return got
			}
			after = page[len(page)-1]
		}
	}
	for _, size := range []int{1, 2, 100} {
		if diff := cmp.Diff([]string{"service-defaults/a", "service-defaults/a-1", "service-defaults/b", "service-defaults/c"},
			walk(chain.KindServiceDefaults, size)); diff != "" {
			t.Errorf("service-defaults in pages of %d (-want +got):\n%s", size, diff)
		}
		if got := walk("", size); len(got) != 6 {
			t.Errorf("every kind in pages of %d = %v, want 6 entries", size, got)
		}
	}
}
