package server_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
	"github.com/chainstore/chainstore/snapshot"
)

func saveSnapshot(t *testing.T, c *api.Client) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := c.SaveSnapshot(ctxFor(t, 30*time.Second), &buf, false); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	return buf.Bytes()
}

// resolverTimeout returns the ConnectTimeout of the resolver named name
// in nd's own store ("" if absent).
func resolverTimeout(nd *servertest.Node, name string) string {
	se := nd.Server().FSM().Store().View().Entry(chain.KeyOf(chain.KindServiceResolver, name))
	if se == nil {
		return ""
	}
	return time.Duration(se.Entry.(*chain.ServiceResolverConfigEntry).ConnectTimeout).String()
}

// TestSnapshotSaveRestoreConverges: a snapshot saved through a follower,
// then more writes, then a restore through the other follower: all three
// servers hold exactly the snapshot's entries, a key written after the
// save is gone (read as deleted at the restore's index), and a chain
// agent sees the restored chain as a newer version, never an older index.
func TestSnapshotSaveRestoreConverges(t *testing.T) {
	c := servertest.NewCluster(t, 3, nil)
	fs := c.Followers()
	viaF0, viaF1 := c.Client(fs[0]), c.Client(fs[1])
	var addrs []string
	for _, nd := range c.Running() {
		addrs = append(addrs, nd.GRPCAddr())
	}
	agent := startChainAgent(t, "a", addrs, "web")

	apply(t, viaF0, resolverEntry("web", 5*time.Second))
	file := saveSnapshot(t, viaF0)
	h, _, err := snapshot.Read(bytes.NewReader(file), snapshot.DefaultMaxSize)
	if err != nil {
		t.Fatalf("saved file: %v", err)
	}
	if h.Datacenter != "dc1" || h.Index == 0 {
		t.Fatalf("header = %+v", h)
	}

	webIdx := apply(t, viaF0, resolverEntry("web", 9*time.Second))
	lateIdx := apply(t, viaF0, resolverEntry("late", 3*time.Second))
	before := agent.waitIndex(t, "web", webIdx)

	resp, err := viaF1.RestoreSnapshot(ctxFor(t, 60*time.Second), bytes.NewReader(file))
	if err != nil {
		t.Fatalf("RestoreSnapshot: %v", err)
	}
	if resp.GetSnapshotIndex() != h.Index || resp.GetRestoredIndex() <= lateIdx {
		t.Fatalf("restore response = %v; want snapshot index %d and a restored index above %d", resp, h.Index, lateIdx)
	}

	for _, nd := range c.Running() {
		testutil.Poll(t, 20*time.Second, nd.Name()+" to restore", func() bool {
			return resolverTimeout(nd, "web") == "5s" && resolverTimeout(nd, "late") == ""
		})
	}
	c.WaitConverged()

	// Reads see the restored state, with indexes above everything served
	// before the restore; the removed key reads as deleted there.
	got, err := viaF0.Get(ctxFor(t, 10*time.Second), &chainstorev1.GetRequest{Kind: "service-resolver", Name: "late"})
	if err != nil || got.GetFound() || got.GetMeta().GetIndex() != resp.GetRestoredIndex() {
		t.Fatalf("Get(late) after restore = %v, %v; want not found at index %d", got, err, resp.GetRestoredIndex())
	}

	after := agent.waitIndex(t, "web", resp.GetRestoredIndex())
	if after.Hash == before.Hash || !strings.Contains(string(after.Chain), `"ConnectTimeout":"5s"`) {
		t.Fatalf("agent got %s, want the restored 5s chain", after.Chain)
	}
	agent.checkMonotonic(t, "web")

	// Writes go on after the restore, above its index.
	if idx := apply(t, viaF0, resolverEntry("web", 7*time.Second)); idx <= resp.GetRestoredIndex() {
		t.Fatalf("write after restore at index %d, want above %d", idx, resp.GetRestoredIndex())
	}
}

// TestSnapshotRestoreRefusesBadFiles: a corrupt file, a file that is not
// a snapshot, a truncated file and a snapshot of another datacenter are
// refused with InvalidArgument and a message naming the problem; the
// state is untouched.
func TestSnapshotRestoreRefusesBadFiles(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	other := servertest.StartSingle(t, func(cfg *server.Config) { cfg.Datacenter = "dc2" })
	s.Put(servertest.Resolver("web", 5*time.Second))
	other.Put(servertest.Resolver("web", 9*time.Second))
	cl := servertest.NewClient(t, s.Addr())
	good := saveSnapshot(t, cl)
	foreignDC := saveSnapshot(t, servertest.NewClient(t, other.Addr()))
	s.Put(servertest.Resolver("web", 6*time.Second))
	applied := s.Server().FSM().AppliedIndex()

	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0x40
	cases := map[string]struct {
		file []byte
		want string
	}{
		"corrupt":        {corrupt, "checksum mismatch"},
		"not a snapshot": {[]byte("kind = \"service-defaults\"\nname = \"web\"\n"), "not a chainstore snapshot"},
		"truncated":      {good[:len(good)-10], "truncated"},
		"other dc":       {foreignDC, `snapshot is from another datacenter: taken in "dc2", this cluster is "dc1"`},
	}
	for name, tc := range cases {
		_, err := cl.RestoreSnapshot(ctxFor(t, 20*time.Second), bytes.NewReader(tc.file))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(api.ErrorText(err), tc.want) {
			t.Errorf("%s: RestoreSnapshot error = %v, want InvalidArgument containing %q", name, err, tc.want)
		}
	}
	if got := s.Server().FSM().AppliedIndex(); got != applied {
		t.Errorf("applied index %d after refused restores, want %d", got, applied)
	}
	se := s.Server().FSM().Store().View().Entry(chain.KeyOf(chain.KindServiceResolver, "web"))
	if se == nil || time.Duration(se.Entry.(*chain.ServiceResolverConfigEntry).ConnectTimeout).String() != "6s" {
		t.Errorf("web after refused restores = %+v, want the 6s resolver", se)
	}
}
