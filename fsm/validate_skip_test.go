package fsm

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/chain"
)

// Graph validation's fast path (chain.ValidateWrite skips the compile when
// a write keeps its key's compile input) through the FSM: a Meta edit
// under a splitter is applied with its new Meta, a protocol change is
// still compiled and rejected, and a delete that falls back to an equal
// proxy-defaults protocol is applied.
func TestApplyGraphValidationFastPath(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(proxyDefaults("http"))
	h.mustUpsert(serviceDefaults("web", "http"))
	h.mustUpsert(selfSplitter("web"))

	edited := serviceDefaults("web", "http")
	edited.Meta = map[string]string{"owner": "team-a"}
	idx := h.mustUpsert(edited)
	got, _ := h.get(sdKey("web"))
	if got == nil || got.ModifyIndex != idx {
		t.Fatalf("service-defaults/web after the Meta edit = %+v, want ModifyIndex %d", got, idx)
	}
	if diff := cmp.Diff(edited.Meta, got.Entry.(*chain.ServiceConfigEntry).Meta); diff != "" {
		t.Errorf("stored Meta mismatch (-want +got):\n%s", diff)
	}

	res := h.upsert(serviceDefaults("web", "tcp"))
	if res.Applied {
		t.Fatalf("protocol tcp under a splitter applied, want rejected")
	}
	wantGraphError(t, res.Err, "does not permit advanced routing")
	if got, _ := h.get(sdKey("web")); got.ModifyIndex != idx {
		t.Errorf("rejected write changed service-defaults/web: ModifyIndex %d, want %d", got.ModifyIndex, idx)
	}

	if res := h.del(sdKey("web")); !res.Applied || res.Err != nil {
		t.Fatalf("delete service-defaults/web under proxy-defaults http = %+v, want applied", res)
	}
	if res := h.del(chain.KeyOf(chain.KindProxyDefaults, chain.ProxyDefaultsName)); res.Applied {
		t.Fatalf("delete proxy-defaults under web's splitter applied, want rejected")
	}
}
