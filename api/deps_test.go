package api

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientsLinkNoServerCode checks the promise of the package doc: the
// client library, and the binaries built only on it, link no Raft, bbolt,
// memberlist or memdb code and none of chainstore's server packages.
// (depguard checks direct imports; this checks the whole import graph.)
func TestClientsLinkNoServerCode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	forbidden := []string{
		"github.com/hashicorp/raft",
		"go.etcd.io/bbolt",
		"github.com/boltdb/bolt",
		"github.com/hashicorp/memberlist",
		"github.com/hashicorp/go-memdb",
		"github.com/chainstore/chainstore/rpc",
		"github.com/chainstore/chainstore/fsm",
		"github.com/chainstore/chainstore/raftnode",
		"github.com/chainstore/chainstore/cluster",
		"github.com/chainstore/chainstore/server",
		"github.com/chainstore/chainstore/chainwatch",
	}
	for _, pkg := range []string{
		"github.com/chainstore/chainstore/api",
		"github.com/chainstore/chainstore/cmd/storeagent",
		"github.com/chainstore/chainstore/cmd/storectl",
		"github.com/chainstore/chainstore/cmd/storebench",
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s links %s", pkg, dep)
				}
			}
		}
	}
}
