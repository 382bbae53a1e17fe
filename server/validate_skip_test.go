package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/internal/servertest"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// TestGraphValidationFastPathAcrossCluster: writes that keep their graph
// input (service-defaults Meta edits, splitter weight shifts) are applied
// on every replica without a compile, interleaved with a write that must
// still be compiled and rejected; the replicas end with the same state,
// holding the last accepted values.
func TestGraphValidationFastPathAcrossCluster(t *testing.T) {
	skipInShort(t)
	c := servertest.NewCluster(t, 3, nil)
	cl := c.Client(c.Followers()[0])

	apply(t, cl, `{"Kind":"service-defaults","Name":"web","Protocol":"http"}`)
	apply(t, cl, `{"Kind":"service-splitter","Name":"web","Splits":[{"Weight":90,"Namespace":"v1"},{"Weight":10,"Namespace":"v2"}]}`)

	var lastMeta, lastSplit uint64
	for i := range 10 {
		lastMeta = apply(t, cl, fmt.Sprintf(`{"Kind":"service-defaults","Name":"web","Protocol":"http","Meta":{"rev":"%d"}}`, i))
		lastSplit = apply(t, cl, fmt.Sprintf(`{"Kind":"service-splitter","Name":"web","Splits":[{"Weight":%d,"Namespace":"v1"},{"Weight":%d,"Namespace":"v2"}]}`, 90-i, 10+i))

		_, err := cl.Apply(ctxFor(t, 10*time.Second), &chainstorev1.ApplyRequest{
			Entry: []byte(`{"Kind":"service-defaults","Name":"web","Protocol":"tcp","Meta":{"rev":"bad"}}`)})
		if status.Code(err) != codes.InvalidArgument || api.ErrorReason(err) != api.ReasonGraphInvalid ||
			!strings.Contains(api.ErrorText(err), "does not permit advanced routing") {
			t.Fatalf("round %d: Apply(web tcp under a splitter) = %v, want InvalidArgument GRAPH_INVALID", i, err)
		}
	}

	c.WaitConverged()
	for _, nd := range c.Running() {
		store := nd.Server().FSM().Store()
		sd, _, _ := store.Get(chain.KeyOf(chain.KindServiceDefaults, "web"))
		if sd == nil || sd.ModifyIndex != lastMeta || sd.Entry.(*chain.ServiceConfigEntry).Meta["rev"] != "9" ||
			sd.Entry.(*chain.ServiceConfigEntry).Protocol != "http" {
			t.Errorf("%s: service-defaults/web = %+v, want rev 9, http, at index %d", nd.Name(), sd, lastMeta)
		}
		sp, _, _ := store.Get(chain.KeyOf(chain.KindServiceSplitter, "web"))
		if sp == nil || sp.ModifyIndex != lastSplit || sp.Entry.(*chain.ServiceSplitterConfigEntry).Splits[0].Weight != 81 {
			t.Errorf("%s: service-splitter/web = %+v, want weights 81/19 at index %d", nd.Name(), sp, lastSplit)
		}
	}
}
