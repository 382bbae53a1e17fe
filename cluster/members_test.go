package cluster

import (
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

func TestMemberTableStatuses(t *testing.T) {
	t.Parallel()
	node := func(leaving bool) *memberlist.Node {
		m := nodeMeta{ID: "id-a", Datacenter: "dc1", RaftAddr: "a:1", GRPCAddr: "a:2", Leaving: leaving}
		return &memberlist.Node{Name: "a", Addr: net.ParseIP("127.0.0.1"), Port: 7946, Meta: m.encode()}
	}
	type step struct {
		call      string // join, update, leave
		leaving   bool
		advance   time.Duration
		want      Status
		wantSince time.Duration // since t0
	}
	tests := map[string][]step{
		"failure": {
			{call: "join", want: StatusAlive},
			{call: "update", advance: time.Second, want: StatusAlive}, // unchanged status keeps its time
			{call: "leave", advance: time.Second, want: StatusFailed, wantSince: 2 * time.Second},
			{call: "join", advance: time.Second, want: StatusAlive, wantSince: 3 * time.Second},
		},
		"graceful leave": {
			{call: "join", want: StatusAlive},
			{call: "update", leaving: true, advance: time.Second, want: StatusLeaving, wantSince: time.Second},
			{call: "leave", advance: time.Second, want: StatusLeft, wantSince: 2 * time.Second},
		},
		"leave intent received directly": {
			{call: "join", want: StatusAlive},
			{call: "intent", advance: time.Second, want: StatusLeaving, wantSince: time.Second},
			{call: "update", advance: time.Second, want: StatusLeaving, wantSince: time.Second}, // older metadata does not undo it
			{call: "leave", advance: time.Second, want: StatusLeft, wantSince: 3 * time.Second},
			{call: "join", advance: time.Second, want: StatusAlive, wantSince: 4 * time.Second}, // a rejoin clears it
			{call: "leave", advance: time.Second, want: StatusFailed, wantSince: 5 * time.Second},
			{call: "intent", advance: time.Second, want: StatusFailed, wantSince: 5 * time.Second}, // ignored when not live
		},
		"leave announced only with the dead message": {
			{call: "join", want: StatusAlive},
			{call: "leave", leaving: true, advance: time.Second, want: StatusLeft, wantSince: time.Second},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			now := t0
			tab := newMemberTable(hclog.NewNullLogger(), func() time.Time { return now })
			for i, s := range steps {
				now = now.Add(s.advance)
				n := node(s.leaving)
				switch s.call {
				case "join":
					tab.NotifyJoin(n)
				case "update":
					tab.NotifyUpdate(n)
				case "leave":
					tab.NotifyLeave(n)
				case "intent":
					name, ok := decodeLeaveIntent(encodeLeaveIntent("a"))
					if !ok {
						t.Fatal("decodeLeaveIntent(encodeLeaveIntent(a)) failed")
					}
					tab.markLeaving(name)
				}
				n.Meta[len(n.Meta)-1] = 'X' // memberlist may reuse its buffers
				n.Addr[len(n.Addr)-1] = 9
				got, _ := tab.get("a")
				if got.status != s.want || !got.since.Equal(t0.Add(s.wantSince)) {
					t.Errorf("step %d (%s): status %v since %v, want %v since %v", i, s.call, got.status, got.since, s.want, t0.Add(s.wantSince))
				}
				want := Member{Name: "a", ID: "id-a", Datacenter: "dc1", GossipAddr: "127.0.0.1:7946", RaftAddr: "a:1", GRPCAddr: "a:2", Status: s.want}
				if diff := cmp.Diff(want, got.member()); diff != "" {
					t.Errorf("step %d (%s): member mismatch (-want +got):\n%s", i, s.call, diff)
				}
			}
			select {
			case <-tab.notify:
			default:
				t.Error("no wake-up posted on notify")
			}
		})
	}
}

func TestMemberTableUndecodableMetaAndReap(t *testing.T) {
	t.Parallel()
	now := t0
	tab := newMemberTable(hclog.NewNullLogger(), func() time.Time { return now })
	tab.NotifyJoin(&memberlist.Node{Name: "bad", Addr: net.ParseIP("127.0.0.1"), Port: 1, Meta: []byte{9, 9}})
	tab.NotifyJoin(&memberlist.Node{Name: "gone", Addr: net.ParseIP("127.0.0.1"), Port: 2})
	tab.NotifyLeave(&memberlist.Node{Name: "gone", Addr: net.ParseIP("127.0.0.1"), Port: 2})
	if m, _ := tab.get("bad"); m.metaErr == nil || m.meta.ID != "" {
		t.Errorf("undecodable member = %+v, want metaErr set and no ID", m)
	}
	now = now.Add(time.Hour)
	tab.reap(t0.Add(time.Minute))
	var names []string
	for _, m := range tab.snapshot() {
		names = append(names, m.name)
	}
	if diff := cmp.Diff([]string{"bad"}, names); diff != "" {
		t.Errorf("members after reap mismatch (-want +got):\n%s", diff)
	}
}
