package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/chainstore/chainstore/chain"
)

// Names of the checks, as they appear in Violation.Check.
const (
	CheckLinearizable    = "linearizable"     // porcupine, per key
	CheckLostWrite       = "lost-write"       // acknowledged write missing from the committed sequence
	CheckFailedApplied   = "failed-applied"   // a definite failure took effect
	CheckDuplicateApply  = "duplicate-apply"  // one unique value committed at two indexes
	CheckKeyIndexOrder   = "key-index-order"  // a key's index went back in real time
	CheckWriteOrder      = "write-order"      // a write committed below one that finished before it started
	CheckClientMonotonic = "client-monotonic" // one client saw a key's index go back
	CheckReplicaAgree    = "replica-agree"    // journals differ at one index
	CheckReplicaFinal    = "replica-final"    // final applied index / hash differ
	CheckWatchOrder      = "watch-order"      // delivered indexes not strictly increasing
	CheckWatchContent    = "watch-content"    // delivered chain != chain compiled at that index
	CheckWatchIndex      = "watch-index"      // delivered index != index of the chain's read set
	CheckWatchHash       = "watch-hash"       // one hash, two different chains
	CheckWatchFinal      = "watch-final"      // agent did not end on the final chain
	CheckJournal         = "journal"          // journal unusable for the check
)

// maxViolationsPerCheck bounds the report; the count is kept.
const maxViolationsPerCheck = 10

// CompileFunc compiles a service's chain from the entries, the way the
// servers do for watchers.
type CompileFunc func(entries chain.EntryLookup, service string) (*chain.CompileResult, error)

// DefaultCompile compiles for the default namespace and datacenter dc1
// with the validation trust domain.
func DefaultCompile(entries chain.EntryLookup, service string) (*chain.CompileResult, error) {
	return chain.Compile(chain.CompileRequest{
		ServiceName:           service,
		EvaluateInNamespace:   chain.DefaultNamespace,
		EvaluateInDatacenter:  chain.DefaultDatacenter,
		EvaluateInTrustDomain: chain.ValidationTrustDomain,
		UseInDatacenter:       chain.DefaultDatacenter,
		Entries:               entries,
	})
}

// CheckConfig configures Check.
type CheckConfig struct {
	// Timeout bounds porcupine per key; a timeout is reported as a
	// violation (Unknown counts as failure, docs/reliability.md, G1).
	Timeout time.Duration
	// Compile compiles chains for the watch checks; nil disables the
	// content, index and compile-based final checks (the order, hash and
	// "all agents agree" checks still run).
	Compile CompileFunc
	// ConflictIndex: a failed CAS on an existing entry must report the
	// entry's current ModifyIndex (entries.proto ApplyResponse.index).
	ConflictIndex bool
	// ChainIndex: a delivered chain version's index must equal the highest
	// index of the keys its compile read at that state.
	ChainIndex bool
	// VisualizeDir, when set, receives a porcupine HTML visualization for
	// every key whose history is not linearizable.
	VisualizeDir string
}

// DefaultCheckConfig returns the configuration used by the fault suite.
func DefaultCheckConfig() CheckConfig {
	return CheckConfig{
		Timeout:       60 * time.Second,
		Compile:       DefaultCompile,
		ConflictIndex: true,
		ChainIndex:    true,
	}
}

// Violation is one failed property.
type Violation struct {
	Check  string
	Detail string
}

func (v Violation) String() string { return v.Check + ": " + v.Detail }

// Report is the result of checking one history.
type Report struct {
	Name string
	// Ops: operations recorded; Checked: those given to porcupine.
	Ops, Checked int
	// Unknown: operations with unknown outcome; Resolved: unknown writes
	// found applied in the journals; Dropped: unknown writes that never
	// took effect (removed); Unresolved: unknown writes kept as unknown.
	Unknown, Resolved, Dropped, Unresolved int
	// Failed: definite failures (never applied, removed from the check).
	Failed         int
	Keys           int
	JournalRecords int
	WatchSessions  int
	WatchEvents    int
	Violations     []Violation
	// Suppressed counts violations beyond maxViolationsPerCheck per check.
	Suppressed int
	Elapsed    time.Duration
}

// OK reports whether no check failed.
func (r *Report) OK() bool { return len(r.Violations) == 0 && r.Suppressed == 0 }

// Summary is a one-line description of the report.
func (r *Report) Summary() string {
	return fmt.Sprintf("%s: %d ops (%d checked, %d failed, %d unknown: %d resolved, %d dropped, %d unresolved) on %d keys, %d journal records, %d watch sessions/%d events, %d violations, checked in %v",
		r.Name, r.Ops, r.Checked, r.Failed, r.Unknown, r.Resolved, r.Dropped, r.Unresolved, r.Keys,
		r.JournalRecords, r.WatchSessions, r.WatchEvents, len(r.Violations)+r.Suppressed, r.Elapsed.Round(time.Millisecond))
}

// Has reports whether a violation of the named check was found.
func (r *Report) Has(check string) bool {
	for _, v := range r.Violations {
		if v.Check == check {
			return true
		}
	}
	return false
}

// violations collects violations with a per-check cap.
type violations struct {
	list       []Violation
	perCheck   map[string]int
	suppressed int
}

func (vs *violations) add(check, format string, args ...any) {
	if vs.perCheck == nil {
		vs.perCheck = make(map[string]int)
	}
	vs.perCheck[check]++
	if vs.perCheck[check] > maxViolationsPerCheck {
		vs.suppressed++
		return
	}
	vs.list = append(vs.list, Violation{Check: check, Detail: fmt.Sprintf(format, args...)})
}

// Check runs every check on h: journal merge and replica agreement,
// resolution of unknown outcomes, lost writes, porcupine per key, the
// index-order checks, and the watch checks.
func Check(h *History, cfg CheckConfig) *Report {
	start := time.Now()
	rep := &Report{Name: h.Name, Ops: len(h.Ops), WatchSessions: len(h.Watches)}
	var vs violations
	for _, w := range h.Watches {
		rep.WatchEvents += len(w.Events)
	}
	for _, j := range h.Journals {
		rep.JournalRecords += len(j)
	}

	merged := mergeJournals(h.Journals, &vs)
	checkFinals(h.Finals, &vs)

	ops := resolveOps(h.Ops, merged, len(h.Journals) > 0, rep, &vs)
	rep.Checked = len(ops)
	rep.Keys = checkLinearizable(ops, cfg, &vs)
	checkIndexOrder(ops, cfg.ConflictIndex, &vs)
	checkWatches(h.Watches, merged, len(h.Journals) > 0, cfg, &vs)

	rep.Violations = vs.list
	rep.Suppressed = vs.suppressed
	rep.Elapsed = time.Since(start)
	return rep
}

// ---- journals ----

// mergedJournal is the committed sequence of FSM commands, one record per
// index, taken from the union of every node's apply journal.
type mergedJournal struct {
	recs    []JournalRecord // apply records, sorted by index
	byValue map[string]JournalRecord
}

// mergeJournals builds the committed sequence and checks State Machine
// Safety: every record at one index, from any node (and from re-applies
// after a restart), describes the same command and result.
func mergeJournals(journals map[string][]JournalRecord, vs *violations) *mergedJournal {
	type seen struct {
		rec  JournalRecord
		node string
	}
	first := make(map[uint64]seen)
	nodes := make([]string, 0, len(journals))
	for n := range journals {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		for _, r := range journals[n] {
			prev, ok := first[r.Index]
			if !ok || (prev.rec.Type == RecordRestore && r.Type == RecordApply) {
				if ok && !r.sameCommand(prev.rec) {
					vs.add(CheckReplicaAgree, "index %d: %s has %s, %s has %s", r.Index, prev.node, describeRecord(prev.rec), n, describeRecord(r))
				}
				first[r.Index] = seen{rec: r, node: n}
				continue
			}
			if !r.sameCommand(prev.rec) {
				vs.add(CheckReplicaAgree, "index %d: %s has %s, %s has %s", r.Index, prev.node, describeRecord(prev.rec), n, describeRecord(r))
			}
		}
	}
	m := &mergedJournal{byValue: make(map[string]JournalRecord)}
	for _, s := range first {
		if s.rec.Type == RecordApply {
			m.recs = append(m.recs, s.rec)
		}
	}
	sort.Slice(m.recs, func(i, j int) bool { return m.recs[i].Index < m.recs[j].Index })
	for _, r := range m.recs {
		if r.Value == "" || !strings.HasPrefix(r.Op, "upsert") {
			continue
		}
		if prev, ok := m.byValue[r.Value]; ok {
			// The same command committed twice (a retried write). Only one
			// of them may have been applied.
			if prev.Applied && r.Applied {
				vs.add(CheckDuplicateApply, "value %s applied at index %d and %d", r.Value, prev.Index, r.Index)
			}
			if prev.Applied {
				continue
			}
		}
		m.byValue[r.Value] = r
	}
	return m
}

func describeRecord(r JournalRecord) string {
	if r.Type == RecordRestore {
		return fmt.Sprintf("restore(hash %s)", r.Hash)
	}
	s := fmt.Sprintf("%s %s", r.Op, r.Key)
	if r.Value != "" {
		s += " " + r.Value
	}
	if r.CASIndex != 0 {
		s += fmt.Sprintf(" cas=%d", r.CASIndex)
	}
	s += fmt.Sprintf(" applied=%v", r.Applied)
	if r.Err != "" {
		s += " err=" + r.Err
	}
	if r.Hash != "" {
		s += " hash=" + r.Hash
	}
	return s
}

// checkFinals: after convergence every node is at the same applied index
// with the same state hash.
func checkFinals(finals []NodeFinal, vs *violations) {
	if len(finals) < 2 {
		return
	}
	ref := finals[0]
	for _, f := range finals[1:] {
		if f.AppliedIndex != ref.AppliedIndex {
			vs.add(CheckReplicaFinal, "applied index: %s at %d, %s at %d", ref.Node, ref.AppliedIndex, f.Node, f.AppliedIndex)
			continue
		}
		if f.Hash != "" && ref.Hash != "" && f.Hash != ref.Hash {
			vs.add(CheckReplicaFinal, "state hash at index %d: %s has %s, %s has %s", f.AppliedIndex, ref.Node, ref.Hash, f.Node, f.Hash)
		}
	}
}

// ---- resolution ----

// resolveOps prepares the operations for porcupine (docs/reliability.md,
// History checker, step 2):
// definite failures and failed reads are removed; an unknown write whose
// unique value was applied gets that index (its return stays infinite);
// one that never took effect is removed. It also checks that every
// acknowledged write is in the committed sequence at its index, and that
// no definite failure took effect.
func resolveOps(in []Operation, m *mergedJournal, haveJournals bool, rep *Report, vs *violations) []Operation {
	out := make([]Operation, 0, len(in))
	for _, op := range in {
		var rec JournalRecord
		var inJournal bool
		if haveJournals && (op.Kind == OpPut || op.Kind == OpCAS) {
			rec, inJournal = m.byValue[op.Value]
		}
		switch op.Outcome {
		case OutcomeFail:
			rep.Failed++
			if inJournal && rec.Applied {
				vs.add(CheckFailedApplied, "%s: definite failure, but applied at index %d", op, rec.Index)
			}
			continue
		case OutcomeUnknown:
			rep.Unknown++
			if !op.Kind.IsWrite() {
				continue // an unanswered read has no effect
			}
			if !haveJournals || op.Kind == OpDelete {
				rep.Unresolved++
				out = append(out, op)
				continue
			}
			if !inJournal || !rec.Applied {
				rep.Dropped++
				continue
			}
			rep.Resolved++
			op.Outcome = OutcomeOK
			op.Applied = true
			op.Index = rec.Index
			op.Resolved = true
			out = append(out, op)
			continue
		}
		if haveJournals && (op.Kind == OpPut || op.Kind == OpCAS) && op.Applied {
			switch {
			case !inJournal:
				vs.add(CheckLostWrite, "%s: acknowledged, but not in any apply journal", op)
			case !rec.Applied:
				vs.add(CheckLostWrite, "%s: acknowledged, but the journal says not applied at index %d (%s)", op, rec.Index, describeRecord(rec))
			case rec.Index != op.Index:
				vs.add(CheckLostWrite, "%s: acknowledged at index %d, committed at index %d", op, op.Index, rec.Index)
			}
		}
		if haveJournals && op.Kind == OpCAS && !op.Applied && inJournal && rec.Applied {
			vs.add(CheckLostWrite, "%s: reported as a failed CAS, but applied at index %d", op, rec.Index)
		}
		out = append(out, op)
	}
	return out
}

// ---- linearizability ----

// checkLinearizable runs porcupine on each key's operations in parallel and
// returns the number of keys.
func checkLinearizable(ops []Operation, cfg CheckConfig, vs *violations) int {
	byKey := make(map[chain.Key][]Operation)
	for _, op := range ops {
		byKey[op.Key] = append(byKey[op.Key], op)
	}
	keys := make([]chain.Key, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })

	model := kvModel(modelOptions{conflictIndex: cfg.ConflictIndex})
	type result struct {
		res  porcupine.CheckResult
		info porcupine.LinearizationInfo
	}
	results := make([]result, len(keys))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i].res, results[i].info = porcupine.CheckOperationsVerbose(model, toPorcupine(byKey[k]), cfg.Timeout)
		}()
	}
	wg.Wait()
	for i, k := range keys {
		r := results[i]
		switch r.res {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			vs.add(CheckLinearizable, "key %s: porcupine timed out after %v on %d ops", k, cfg.Timeout, len(byKey[k]))
			continue
		}
		vs.add(CheckLinearizable, "key %s: not linearizable: %s", k, explainIllegal(byKey[k], r.info))
		if cfg.VisualizeDir != "" {
			path := filepath.Join(cfg.VisualizeDir, strings.NewReplacer("/", "_").Replace(k.String())+".html")
			if err := os.MkdirAll(cfg.VisualizeDir, 0o755); err == nil {
				_ = porcupine.VisualizePath(model, r.info, path)
			}
		}
	}
	return len(keys)
}

func toPorcupine(ops []Operation) []porcupine.Operation {
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		out[i] = porcupine.Operation{ClientId: op.Client, Input: op, Output: op, Call: op.Call, Return: op.Return}
	}
	return out
}

// explainIllegal names the longest linearizable prefix's tail and the
// first operation (by return) that could not be placed after it.
func explainIllegal(ops []Operation, info porcupine.LinearizationInfo) string {
	parts := info.PartialLinearizations()
	if len(parts) == 0 || len(parts[0]) == 0 {
		return fmt.Sprintf("%d ops", len(ops))
	}
	var longest []int
	for _, l := range parts[0] {
		if len(l) > len(longest) {
			longest = l
		}
	}
	in := make(map[int]bool, len(longest))
	for _, i := range longest {
		in[i] = true
	}
	var stuck *Operation
	for i := range ops {
		if in[i] {
			continue
		}
		if stuck == nil || ops[i].Return < stuck.Return {
			stuck = &ops[i]
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d ops; longest linearizable prefix has %d", len(ops), len(longest))
	from := len(longest) - 3
	if from < 0 {
		from = 0
	}
	for _, i := range longest[from:] {
		fmt.Fprintf(&b, "; ... %s", ops[i])
	}
	if stuck != nil {
		fmt.Fprintf(&b, "; cannot then place %s", *stuck)
	}
	return b.String()
}

// ---- index order ----

// indexed reports whether op carries the key's index at its linearization
// point: answered gets, applied puts and CASes, and (when the server
// promises it, CheckConfig.ConflictIndex) failed CASes. Writes resolved
// from journals are excluded (their return time is unknown), and so are
// deletes: a delete that found nothing to delete inside the FSM (a
// concurrent delete won) answers with its own Raft index, which is not the
// key's index.
func indexed(op Operation, conflictIndex bool) bool {
	if op.Outcome != OutcomeOK || op.Resolved || op.Index == 0 || op.Return == Infinity {
		return false
	}
	switch op.Kind {
	case OpDelete:
		return false
	case OpCAS:
		return op.Applied || conflictIndex
	}
	return true
}

// checkIndexOrder runs the cheap global checks (docs/reliability.md,
// History checker, step 4).
// The API returns per-entry indexes (never a table-wide one), so
// "no time travel" is checked per key: no operation sees a key's index
// lower than one seen by an operation that finished before it started.
// Across keys, Raft's commit order gives a global check on writes: a write
// applied at index i must not have finished before a write applied at an
// index below i started. And each client's view of a key never goes back.
func checkIndexOrder(ops []Operation, conflictIndex bool, vs *violations) {
	byKey := make(map[chain.Key][]Operation)
	var writes []Operation
	byClient := make(map[int][]Operation)
	for _, op := range ops {
		if !indexed(op, conflictIndex) {
			continue
		}
		byKey[op.Key] = append(byKey[op.Key], op)
		byClient[op.Client] = append(byClient[op.Client], op)
		if (op.Kind == OpPut || op.Kind == OpCAS) && op.Applied {
			writes = append(writes, op)
		}
	}
	keys := make([]chain.Key, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		realTimeOrder(byKey[k], false, func(before, after Operation) {
			vs.add(CheckKeyIndexOrder, "%s saw index %d after %s finished with index %d", after, after.Index, before, before.Index)
		})
	}
	realTimeOrder(writes, true, func(before, after Operation) {
		vs.add(CheckWriteOrder, "%s committed at %d, but %s had finished at %d before it started", after, after.Index, before, before.Index)
	})
	clients := make([]int, 0, len(byClient))
	for c := range byClient {
		clients = append(clients, c)
	}
	sort.Ints(clients)
	for _, c := range clients {
		list := byClient[c]
		sort.Slice(list, func(i, j int) bool { return list[i].Call < list[j].Call })
		last := make(map[chain.Key]Operation)
		for _, op := range list {
			if prev, ok := last[op.Key]; ok && op.Index < prev.Index {
				vs.add(CheckClientMonotonic, "client %d: %s after %s", c, op, prev)
			}
			last[op.Key] = op
		}
	}
}

// realTimeOrder calls bad(before, after) for every op "after" whose index
// is lower than (or, strict, not higher than) the highest index of the ops
// that returned before it was called.
func realTimeOrder(ops []Operation, strict bool, bad func(before, after Operation)) {
	byCall := append([]Operation(nil), ops...)
	sort.Slice(byCall, func(i, j int) bool { return byCall[i].Call < byCall[j].Call })
	byRet := append([]Operation(nil), ops...)
	sort.Slice(byRet, func(i, j int) bool { return byRet[i].Return < byRet[j].Return })
	var best *Operation
	j := 0
	for _, op := range byCall {
		for j < len(byRet) && byRet[j].Return < op.Call {
			if best == nil || byRet[j].Index > best.Index {
				best = &byRet[j]
			}
			j++
		}
		if best == nil {
			continue
		}
		if op.Index < best.Index || (strict && op.Index == best.Index) {
			bad(*best, op)
		}
	}
}
