package cluster

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/raftnode"
)

func TestAdmitMembers(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	member := func(name, id, raft string, st Status, since time.Time) memberState {
		return memberState{name: name, status: st, since: since, meta: nodeMeta{ID: id, Datacenter: "dc1", RaftAddr: raft}}
	}
	servers := []raftnode.Server{voter("n1"), voter("n2"), voter("n3")}
	cases := map[string]struct {
		members      []memberState
		wantAdmitted []string
		wantRefused  map[string]refusalReason
	}{
		"consistent members": {
			members:      []memberState{member("n1", nodeID("n1"), raftAddr("n1"), StatusAlive, t0), member("n2", nodeID("n2"), raftAddr("n2"), StatusAlive, t0), member("n4", nodeID("n4"), raftAddr("n4"), StatusAlive, t0)},
			wantAdmitted: []string{"n1", "n2", "n4"},
		},
		"a follower's ID at another address": {
			members:      []memberState{member("n1", nodeID("n1"), raftAddr("n1"), StatusAlive, t0), member("evil", nodeID("n2"), "evil:1", StatusAlive, t0.Add(time.Second))},
			wantAdmitted: []string{"n1"},
			wantRefused:  map[string]refusalReason{"evil": refusedAddress},
		},
		"this server's ID under another name": {
			members:      []memberState{member("n1", nodeID("n1"), raftAddr("n1"), StatusAlive, t0), member("evil", nodeID("n1"), raftAddr("n1"), StatusAlive, t0)},
			wantAdmitted: []string{"n1"},
			wantRefused:  map[string]refusalReason{"evil": refusedSelf},
		},
		"same ID and address, the later claimant loses": {
			members:      []memberState{member("evil", nodeID("n2"), raftAddr("n2"), StatusAlive, t0.Add(time.Second)), member("n2", nodeID("n2"), raftAddr("n2"), StatusAlive, t0)},
			wantAdmitted: []string{"n2"},
			wantRefused:  map[string]refusalReason{"evil": refusedDuplicate},
		},
		"a dead holder does not block a renamed server": {
			members:      []memberState{member("n2-old", nodeID("n2"), raftAddr("n2"), StatusFailed, t0), member("n2", nodeID("n2"), raftAddr("n2"), StatusAlive, t0.Add(time.Minute))},
			wantAdmitted: []string{"n2-old", "n2"},
		},
		"a new server's ID claimed twice": {
			members:      []memberState{member("n4", nodeID("n4"), raftAddr("n4"), StatusAlive, t0), member("n4b", nodeID("n4"), "other:1", StatusAlive, t0.Add(time.Second))},
			wantAdmitted: []string{"n4"},
			wantRefused:  map[string]refusalReason{"n4b": refusedDuplicate},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			admitted, refused := admitMembers(nodeID("n1"), "n1", servers, tc.members)
			var gotAdmitted []string
			for _, m := range admitted {
				gotAdmitted = append(gotAdmitted, m.name)
			}
			gotRefused := map[string]refusalReason{}
			for _, r := range refused {
				gotRefused[r.name] = r.reason
			}
			if tc.wantRefused == nil {
				tc.wantRefused = map[string]refusalReason{}
			}
			if d := cmp.Diff(tc.wantAdmitted, gotAdmitted); d != "" {
				t.Errorf("admitted (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantRefused, gotRefused); d != "" {
				t.Errorf("refused (-want +got):\n%s", d)
			}
		})
	}
}
