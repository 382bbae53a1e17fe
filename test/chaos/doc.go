// Package chaos is chainstore's fault-injection suite and the tools it is
// built from (docs/reliability.md, Fault suite and History checker):
//
//   - Proxy: a per-directed-link TCP proxy (pause and hold bytes,
//     blackhole-and-refuse, delay with jitter, reset, heal). The servers'
//     Raft transports dial their peers through these proxies (the
//     test-only stored flag --test-raft-dial-map), so partitions, bridges
//     and one-way cuts are switches on proxies.
//   - Recorder and History: client operations with call/return times on
//     one monotonic clock, watch sessions, and each node's apply journal
//     (stored --test-apply-journal).
//   - Check: porcupine on a key-partitioned model of config entries (put,
//     linearizable get, CAS on ModifyIndex, delete) after resolving
//     unknown outcomes from the journals; lost and duplicated writes; index
//     order per key, per client and across writes; replica agreement; and
//     the watch checks (indexes strictly increase, each delivered chain is
//     the chain compiled from the committed entries at its index, every
//     agent ends on the final chain).
//   - The fault suite itself (suite_test.go, with cluster_test.go for the
//     processes and proxies and traffic_test.go for clients and agents):
//     three stored processes on loopback, concurrent clients and watching
//     agents, one fault per history. The short tier runs in `go test` (and so in `make test`);
//     CHAOS_LONG=1 (make chaos) runs the long tier and the failover
//     measurement.
//
// # Goroutines
//
// Proxy: NewProxy starts one accept loop; each accepted connection gets a
// goroutine that dials the target and then runs four pumps (a reader and a
// writer per direction, joined by a bounded queue: the queue is what holds
// bytes while a direction is paused). Proxy state (pause, blackhole,
// delay) is guarded by Proxy.mu; pumps wait on a "changed" channel that
// every update closes and replaces. Close closes the listener, resets every
// connection and waits for all of these goroutines.
//
// Recorder is a passive, mutex-guarded log; Check runs porcupine on up to
// two keys at a time and joins those goroutines before returning. The
// fault suite owns its client and agent goroutines and joins them before
// checking; every server process is killed and waited for in t.Cleanup.
package chaos
