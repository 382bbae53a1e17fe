package cluster

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/chainstore/chainstore/raftnode"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// mem builds a member-table entry for test node name.
func mem(name string, st Status, since time.Time) memberState {
	return memberState{
		name:   name,
		meta:   nodeMeta{ID: nodeID(name), Datacenter: "dc1", RaftAddr: raftAddr(name), GRPCAddr: grpcAddr(name)},
		status: st,
		since:  since,
	}
}

func nonVoter(name string) raftnode.Server {
	s := voter(name)
	s.Voter = false
	return s
}

func voters(names ...string) []raftnode.Server {
	out := make([]raftnode.Server, len(names))
	for i, n := range names {
		out[i] = voter(n)
	}
	return out
}

func alive(names ...string) []memberState {
	out := make([]memberState, len(names))
	for i, n := range names {
		out[i] = mem(n, StatusAlive, t0)
	}
	return out
}

func TestPlanReconcile(t *testing.T) {
	t.Parallel()
	const timeout = 30 * time.Second
	now := t0.Add(time.Hour)
	failed := func(name string, ago time.Duration) memberState { return mem(name, StatusFailed, now.Add(-ago)) }
	rm := func(name string, voter bool, r removalReason, since time.Time) removal {
		return removal{ID: nodeID(name), Voter: voter, Reason: r, Since: since}
	}
	tests := map[string]struct {
		servers      []raftnode.Server
		members      []memberState
		unknownSince map[string]time.Time
		want         plan
	}{
		"alive server missing from raft is added": {
			servers: voters("n1"),
			members: alive("n1", "n2", "n3"),
			want:    plan{add: voters("n2", "n3")},
		},
		"present voter with same address is a no-op": {
			servers: voters("n1", "n2", "n3"),
			members: alive("n1", "n2", "n3"),
			want:    plan{},
		},
		"stale address is re-added": {
			servers: []raftnode.Server{voter("n1"), {ID: nodeID("n2"), Address: "old:8300", Voter: true}},
			members: alive("n1", "n2"),
			want:    plan{add: voters("n2")},
		},
		"non-voter is made a voter": {
			servers: []raftnode.Server{voter("n1"), nonVoter("n2")},
			members: alive("n1", "n2"),
			want:    plan{add: voters("n2")},
		},
		"leaving, other-datacenter and undecodable members are not added": {
			servers: voters("n1"),
			members: func() []memberState {
				other := mem("n3", StatusAlive, t0)
				other.meta.Datacenter = "dc2"
				bad := memberState{name: "n4", status: StatusAlive, metaErr: errInvalidMeta}
				return []memberState{mem("n1", StatusAlive, t0), mem("n2", StatusLeaving, t0), other, bad}
			}(),
			want: plan{},
		},
		"left server keeps its slot until the timeout": {
			servers: voters("n1", "n2", "n3"),
			members: append(alive("n1", "n2"), mem("n3", StatusLeft, now.Add(-10*time.Second))),
			want:    plan{nextDue: now.Add(20 * time.Second)},
		},
		"left server is removed after the timeout": {
			servers: voters("n1", "n2", "n3"),
			members: append(alive("n1", "n2"), mem("n3", StatusLeft, now.Add(-timeout))),
			want:    plan{removeDead: []removal{rm("n3", true, reasonLeft, now.Add(-timeout))}},
		},
		"failed server waits for the timeout": {
			servers: voters("n1", "n2", "n3"),
			members: append(alive("n1", "n2"), failed("n3", 10*time.Second)),
			want:    plan{nextDue: now.Add(20 * time.Second)},
		},
		"failed server is removed after the timeout": {
			servers: voters("n1", "n2", "n3"),
			members: append(alive("n1", "n2"), failed("n3", timeout)),
			want:    plan{removeDead: []removal{rm("n3", true, reasonFailed, now.Add(-timeout))}},
		},
		"two of three failed: nothing removed": {
			servers: voters("n1", "n2", "n3"),
			members: append(alive("n1"), failed("n2", time.Minute), failed("n3", 2*time.Minute)),
			want: plan{blocked: []removal{
				rm("n3", true, reasonFailed, now.Add(-2*time.Minute)),
				rm("n2", true, reasonFailed, now.Add(-time.Minute)),
			}},
		},
		"two of five failed: both removed, oldest first": {
			servers: voters("n1", "n2", "n3", "n4", "n5"),
			members: append(alive("n1", "n2", "n3"), failed("n4", time.Minute), failed("n5", 2*time.Minute)),
			want: plan{removeDead: []removal{
				rm("n5", true, reasonFailed, now.Add(-2*time.Minute)),
				rm("n4", true, reasonFailed, now.Add(-time.Minute)),
			}},
		},
		"three of five failed: nothing removed": {
			servers: voters("n1", "n2", "n3", "n4", "n5"),
			members: append(alive("n1", "n2"), failed("n3", time.Minute), failed("n4", time.Minute), failed("n5", time.Minute)),
			want: plan{blocked: []removal{
				rm("n3", true, reasonFailed, now.Add(-time.Minute)),
				rm("n4", true, reasonFailed, now.Add(-time.Minute)),
				rm("n5", true, reasonFailed, now.Add(-time.Minute)),
			}},
		},
		"graceful leaves count against the guard like failures": {
			servers: voters("n1", "n2", "n3", "n4", "n5"),
			members: append(alive("n1", "n2", "n3"), mem("n4", StatusLeft, now.Add(-2*time.Minute)), failed("n5", time.Minute)),
			want: plan{
				removeDead: []removal{
					rm("n4", true, reasonLeft, now.Add(-2*time.Minute)),
					rm("n5", true, reasonFailed, now.Add(-time.Minute)),
				},
			},
		},
		"two of three left: nothing removed": {
			servers: voters("n1", "n2", "n3"),
			members: append(alive("n1"), mem("n2", StatusLeft, now.Add(-time.Minute)), mem("n3", StatusLeft, now.Add(-time.Minute))),
			want: plan{blocked: []removal{
				rm("n2", true, reasonLeft, now.Add(-time.Minute)),
				rm("n3", true, reasonLeft, now.Add(-time.Minute)),
			}},
		},
		"failed non-voter is removed even when voters are blocked": {
			servers: append(voters("n1", "n2", "n3"), nonVoter("n4")),
			members: append(alive("n1"), failed("n2", time.Minute), failed("n3", time.Minute), failed("n4", time.Minute)),
			want: plan{
				removeDead: []removal{rm("n4", false, reasonFailed, now.Add(-time.Minute))},
				blocked: []removal{
					rm("n2", true, reasonFailed, now.Add(-time.Minute)),
					rm("n3", true, reasonFailed, now.Add(-time.Minute)),
				},
			},
		},
		"this server is never removed": {
			servers: voters("n1", "n2", "n3"),
			members: append(alive("n2", "n3"), mem("n1", StatusLeft, t0)),
			want:    plan{},
		},
		"unknown server starts its clock": {
			servers: voters("n1", "n2", "n9"),
			members: alive("n1", "n2"),
			want:    plan{unknown: map[string]time.Time{nodeID("n9"): now}, nextDue: now.Add(timeout)},
		},
		"unknown server is removed after the timeout": {
			servers:      voters("n1", "n2", "n9"),
			members:      alive("n1", "n2"),
			unknownSince: map[string]time.Time{nodeID("n9"): now.Add(-timeout), nodeID("gone"): t0},
			want: plan{
				removeDead: []removal{rm("n9", true, reasonUnknown, now.Add(-timeout))},
				unknown:    map[string]time.Time{nodeID("n9"): now.Add(-timeout)},
			},
		},
		"server in another datacenter counts as unknown": {
			servers: voters("n1", "n2"),
			members: func() []memberState {
				m := mem("n2", StatusAlive, t0)
				m.meta.Datacenter = "dc2"
				return []memberState{mem("n1", StatusAlive, t0), m}
			}(),
			want: plan{unknown: map[string]time.Time{nodeID("n2"): now}, nextDue: now.Add(timeout)},
		},
		"a renamed server's live name wins": {
			servers: voters("n1", "n2"),
			members: func() []memberState {
				old := mem("n2-old", StatusFailed, now.Add(-time.Hour))
				old.meta.ID = nodeID("n2")
				return []memberState{mem("n1", StatusAlive, t0), old, mem("n2", StatusAlive, t0)}
			}(),
			want: plan{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := planReconcile(planInput{
				selfID:            nodeID("n1"),
				datacenter:        "dc1",
				servers:           tc.servers,
				members:           tc.members,
				now:               now,
				deadServerTimeout: timeout,
				unknownSince:      tc.unknownSince,
			})
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(plan{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("planReconcile() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanBootstrap(t *testing.T) {
	t.Parallel()
	expect := func(m memberState, n int) memberState { m.meta.BootstrapExpect = n; return m }
	participants := func(names ...string) []memberState {
		out := alive(names...)
		for i := range out {
			out[i] = expect(out[i], 3)
		}
		return out
	}
	withState := func(m memberState, hash uint64) memberState {
		m.meta.HasState, m.meta.BootstrapHash = true, hash
		return m
	}
	trio := voters("n1", "n2", "n3")
	tests := map[string]struct {
		members     []memberState
		wantServers []raftnode.Server
		want        bootstrapDecision
	}{
		"waits for enough servers": {
			members: participants("n1", "n2"),
			want:    bootstrapWaiting,
		},
		"bootstraps with all participants sorted by ID": {
			members:     participants("n3", "n1", "n2"),
			wantServers: trio,
			want:        bootstrapGo,
		},
		"more than expected: all of them": {
			members:     participants("n1", "n2", "n3", "n4"),
			wantServers: voters("n1", "n2", "n3", "n4"),
			want:        bootstrapGo,
		},
		"a peer with existing state stops bootstrap": {
			members: append(participants("n1", "n2"), withState(expect(mem("n3", StatusAlive, t0), 3), 0)),
			want:    bootstrapPeerState,
		},
		"an existing-state peer with bootstrap_expect 0 also stops it": {
			members: append(participants("n1"), withState(mem("n9", StatusAlive, t0), 0)),
			want:    bootstrapPeerState,
		},
		"a peer that bootstrapped the same configuration is joined": {
			members:     append(participants("n1", "n2"), withState(expect(mem("n3", StatusAlive, t0), 3), configHash(trio))),
			wantServers: trio,
			want:        bootstrapGo,
		},
		"a peer that bootstrapped another configuration stops bootstrap": {
			members: append(participants("n1", "n2"), withState(expect(mem("n3", StatusAlive, t0), 3), 12345)),
			want:    bootstrapPeerState,
		},
		"another bootstrap_expect is a conflict": {
			members: append(participants("n1", "n2"), expect(mem("n3", StatusAlive, t0), 5)),
			want:    bootstrapConflict,
		},
		"servers without bootstrap_expect neither count nor take part": {
			members: append(participants("n1", "n2"), mem("n3", StatusAlive, t0)),
			want:    bootstrapWaiting,
		},
		"servers of other datacenters and dead servers do not count": {
			members: func() []memberState {
				ms := participants("n1", "n2", "n3", "n4")
				ms[2].meta.Datacenter = "dc2"
				ms[3].status = StatusFailed
				return ms
			}(),
			want: bootstrapWaiting,
		},
		"duplicate IDs are a conflict": {
			members: func() []memberState {
				ms := participants("n1", "n2", "n3")
				ms[2].meta.ID = ms[1].meta.ID
				return ms
			}(),
			want: bootstrapConflict,
		},
		"duplicate raft addresses are a conflict": {
			members: func() []memberState {
				ms := participants("n1", "n2", "n3")
				ms[2].meta.RaftAddr = ms[1].meta.RaftAddr
				return ms
			}(),
			want: bootstrapConflict,
		},
		"waits until this server sees itself": {
			members: participants("n2", "n3", "n4"),
			want:    bootstrapWaiting,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			servers, got, detail := planBootstrap(nodeID("n1"), "dc1", 3, tc.members)
			if got != tc.want {
				t.Errorf("planBootstrap() decision = %v (%s), want %v", got, detail, tc.want)
			}
			if diff := cmp.Diff(tc.wantServers, servers); diff != "" {
				t.Errorf("planBootstrap() servers mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanAutopilotStages: with a stabilization time, a new server is
// added as a non-voter, promoted only once it has been alive that long; a
// present voter is never demoted; a voter at a new address stays a voter.
func TestPlanAutopilotStages(t *testing.T) {
	t.Parallel()
	const stable = 10 * time.Second
	now := t0.Add(time.Hour)
	aliveSince := func(name string, ago time.Duration) memberState { return mem(name, StatusAlive, now.Add(-ago)) }
	tests := map[string]struct {
		servers []raftnode.Server
		members []memberState
		want    plan
	}{
		"new server joins as a non-voter": {
			servers: voters("n1", "n2", "n3"),
			members: append(alive("n1", "n2", "n3"), aliveSince("n4", time.Second)),
			want:    plan{add: []raftnode.Server{nonVoter("n4")}},
		},
		"non-voter not yet stable waits": {
			servers: append(voters("n1", "n2", "n3"), nonVoter("n4")),
			members: append(alive("n1", "n2", "n3"), aliveSince("n4", 4*time.Second)),
			want:    plan{nextDue: now.Add(6 * time.Second)},
		},
		"stable non-voter is promoted": {
			servers: append(voters("n1", "n2", "n3"), nonVoter("n4")),
			members: append(alive("n1", "n2", "n3"), aliveSince("n4", stable)),
			want:    plan{add: voters("n4")},
		},
		"restarted voter stays a voter": {
			servers: voters("n1", "n2", "n3"),
			members: append(alive("n1", "n2"), aliveSince("n3", time.Second)),
			want:    plan{},
		},
		"voter at a new address is re-added as a voter": {
			servers: []raftnode.Server{voter("n1"), voter("n2"), {ID: nodeID("n3"), Address: "old:8300", Voter: true}},
			members: append(alive("n1", "n2"), aliveSince("n3", time.Second)),
			want:    plan{add: voters("n3")},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := planReconcile(planInput{
				selfID: nodeID("n1"), datacenter: "dc1", servers: tc.servers, members: tc.members,
				now: now, deadServerTimeout: time.Minute, stabilization: stable,
			})
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(plan{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("planReconcile() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
