package chaos

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/chainstore/chainstore/chain"
)

// simBugs are the seeded bugs the checkers must catch (docs/reliability.md,
// G10).
type simBugs struct {
	// staleRead serves some reads from a lagging copy of the state, as a
	// leader that skipped VerifyLeader would after being deposed.
	staleRead bool
	// casNoCheck applies every CAS without comparing ModifyIndex.
	casNoCheck bool
	// dropFinalWatch never delivers the last version of each chain to
	// agent 0.
	dropFinalWatch bool
	// watchBackwards delivers an older version to agent 0 after a newer one.
	watchBackwards bool
	// ackBeforeCommit acknowledges some writes that are then lost.
	ackBeforeCommit bool
}

type simEntry struct {
	value string
	mod   uint64
}

type simVersion struct {
	index uint64
	hash  string
	chain json.RawMessage
	err   string
}

// simStore is an in-memory, linearizable (unless bugs say otherwise) model
// of the cluster: one mutex is the commit point. It writes the same apply
// journal on three "nodes" and feeds watching agents with chain versions
// compiled from its state, so checker tests get realistic histories.
type simStore struct {
	bugs simBugs
	rng  *rand.Rand

	mu       sync.Mutex
	index    uint64
	entries  map[chain.Key]simEntry
	lagged   map[chain.Key]simEntry // state some writes ago (stale reads)
	mem      *chain.MemStore
	keyIndex map[chain.Key]uint64
	journal  []JournalRecord
	current  map[string]simVersion // service -> latest version
	sessions []*WatchSession
	lastSent []map[string]simVersion // per agent: service -> last sent
	rec      *Recorder
}

func newSimStore(bugs simBugs, seed uint64, rec *Recorder, agents int, services []string) *simStore {
	s := &simStore{
		bugs:     bugs,
		rng:      rand.New(rand.NewPCG(seed, seed^0x5bd1e995)),
		entries:  make(map[chain.Key]simEntry),
		lagged:   make(map[chain.Key]simEntry),
		mem:      chain.NewMemStore(),
		keyIndex: make(map[chain.Key]uint64),
		current:  make(map[string]simVersion),
		rec:      rec,
		// Raft's own entries (configuration, no-ops) come first in a real
		// log; index 1 is never an FSM write.
		index: 10,
	}
	for a := 0; a < agents; a++ {
		s.lastSent = append(s.lastSent, make(map[string]simVersion))
		for _, svc := range services {
			s.sessions = append(s.sessions, &WatchSession{Agent: fmt.Sprintf("a%d", a), Service: svc})
		}
	}
	// Every watched chain starts as the default chain.
	for _, svc := range services {
		s.current[svc] = s.compileLocked(svc)
		s.deliverLocked(svc, false)
	}
	return s
}

func (s *simStore) session(agent int, svc string) *WatchSession {
	for _, w := range s.sessions {
		if w.Agent == fmt.Sprintf("a%d", agent) && w.Service == svc {
			return w
		}
	}
	return nil
}

func (s *simStore) compileLocked(svc string) simVersion {
	res, err := DefaultCompile(s.mem, svc)
	var v simVersion
	for _, k := range res.Reads {
		if i := s.keyIndex[k]; i > v.index {
			v.index = i
		}
	}
	if err != nil {
		v.err = err.Error()
	} else {
		b, merr := json.Marshal(res.Chain)
		if merr != nil {
			panic(merr)
		}
		v.chain = b
	}
	sum := sha256.Sum256(append(append([]byte{}, v.chain...), v.err...))
	v.hash = hex.EncodeToString(sum[:8])
	return v
}

// deliverLocked sends the current version of svc to every agent; agents
// that are "slow" (randomly) skip it, unless final.
func (s *simStore) deliverLocked(svc string, final bool) {
	cur := s.current[svc]
	for a := range s.lastSent {
		last, had := s.lastSent[a][svc]
		if had && last.hash == cur.hash {
			continue
		}
		if !final && had && s.rng.IntN(4) == 0 {
			continue // slow agent: skips this version
		}
		w := s.session(a, svc)
		w.Events = append(w.Events, WatchEvent{Time: s.rec.Now(), Index: cur.index, Hash: cur.hash, Chain: cur.chain, Error: cur.err, Server: "n1"})
		if a == 0 && s.bugs.watchBackwards && had && s.rng.IntN(3) == 0 {
			w.Events = append(w.Events, WatchEvent{Time: s.rec.Now(), Index: last.index, Hash: last.hash, Chain: last.chain, Error: last.err, Server: "n1"})
			s.lastSent[a][svc] = last
			continue
		}
		s.lastSent[a][svc] = cur
	}
}

// commitLocked appends a record and republishes the chain of key.
func (s *simStore) commitLocked(r JournalRecord, dropForAgent0 bool) {
	s.journal = append(s.journal, r)
	if !r.Applied {
		return
	}
	svc := r.Key.Name
	if _, watched := s.current[svc]; !watched {
		return
	}
	v := s.compileLocked(svc)
	if v.hash == s.current[svc].hash {
		return
	}
	s.current[svc] = v
	if dropForAgent0 {
		keep := s.lastSent[0][svc]
		s.deliverLocked(svc, false)
		// Undo agent 0's delivery: the version is dropped.
		w := s.session(0, svc)
		if n := len(w.Events); n > 0 && w.Events[n-1].Hash == v.hash {
			w.Events = w.Events[:n-1]
		}
		s.lastSent[0][svc] = keep
		return
	}
	s.deliverLocked(svc, false)
}

func (s *simStore) nextIndexLocked() uint64 {
	s.index++
	if s.index%7 == 0 {
		// Refresh the lagging copy every few writes.
		s.lagged = make(map[chain.Key]simEntry, len(s.entries))
		for k, v := range s.entries {
			s.lagged[k] = v
		}
	}
	return s.index
}

// do executes op at one atomic point and returns the output. When
// applyUnknown is false an unknown-outcome write is not applied.
func (s *simStore) do(op Operation, unknown, applyUnknown bool) Operation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Operation{Outcome: OutcomeOK, Server: "n1"}
	if unknown {
		out.Outcome = OutcomeUnknown
		if !applyUnknown || op.Kind == OpGet {
			return out
		}
	}
	cur, exists := s.entries[op.Key]
	switch op.Kind {
	case OpGet:
		src := s.entries
		if s.bugs.staleRead && s.rng.IntN(3) == 0 {
			src = s.lagged
		}
		e, ok := src[op.Key]
		out.Found = ok
		out.Got = e.value
		out.Index = e.mod
		if !ok {
			out.Index = max(s.keyIndex[op.Key], 1)
		}
	case OpPut, OpCAS:
		allowed := true
		if op.Kind == OpCAS && !s.bugs.casNoCheck {
			allowed = (op.Expect == 0 && !exists) || (exists && cur.mod == op.Expect)
		}
		idx := s.nextIndexLocked()
		e, err := EntryFor(op.Key, op.Value)
		if err != nil {
			panic(err)
		}
		raw, err := chain.EncodeEntry(e)
		if err != nil {
			panic(err)
		}
		opName := "upsert"
		if op.Kind == OpCAS {
			opName = "upsert-cas"
		}
		rec := JournalRecord{Type: RecordApply, Index: idx, Op: opName, Key: op.Key, Value: op.Value, Entry: raw, CASIndex: op.Expect, Applied: allowed}
		lost := s.bugs.ackBeforeCommit && s.rng.IntN(10) == 0
		if allowed && !lost {
			s.entries[op.Key] = simEntry{value: op.Value, mod: idx}
			s.mem.Upsert(e)
			s.keyIndex[op.Key] = idx
			s.commitLocked(rec, false)
		} else if !lost {
			s.commitLocked(rec, false)
		}
		out.Applied = allowed
		out.Index = idx
		if !allowed {
			out.Index = cur.mod
			if !exists {
				out.Index = max(s.keyIndex[op.Key], 1)
			}
		}
	case OpDelete:
		out.Applied = true
		if !exists {
			// Nothing to do: the answer is the key's current index.
			out.Index = max(s.keyIndex[op.Key], 1)
			return out
		}
		idx := s.nextIndexLocked()
		delete(s.entries, op.Key)
		s.mem.Delete(op.Key)
		s.keyIndex[op.Key] = idx
		s.commitLocked(JournalRecord{Type: RecordApply, Index: idx, Op: "delete", Key: op.Key, Applied: true}, false)
		out.Index = idx
	}
	return out
}

// finish is the quiesce step: with dropFinalWatch, one more write per
// watched chain whose version agent 0 never gets; then every agent is
// brought to the current version (a healthy stream catches up).
func (s *simStore) finish(keys []chain.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bugs.dropFinalWatch {
		for i, k := range keys {
			idx := s.nextIndexLocked()
			v := fmt.Sprintf("final-%d", i)
			e, _ := EntryFor(k, v)
			raw, _ := chain.EncodeEntry(e)
			s.entries[k] = simEntry{value: v, mod: idx}
			s.mem.Upsert(e)
			s.keyIndex[k] = idx
			s.commitLocked(JournalRecord{Type: RecordApply, Index: idx, Op: "upsert", Key: k, Value: v, Entry: raw, Applied: true}, true)
		}
	}
	for svc := range s.current {
		if s.bugs.dropFinalWatch {
			keep := s.lastSent[0][svc]
			s.deliverLocked(svc, true)
			w := s.session(0, svc)
			if n := len(w.Events); n > 0 && w.Events[n-1].Hash == s.current[svc].hash {
				w.Events = w.Events[:n-1]
			}
			s.lastSent[0][svc] = keep
			continue
		}
		s.deliverLocked(svc, true)
	}
}

type simConfig struct {
	clients, opsPerClient, keys, agents int
	unknownPct                          int // per mille of calls with unknown outcome
	seed                                uint64
	bugs                                simBugs
}

// simulate runs concurrent clients against a simStore and returns the
// history (three identical journals, converged finals).
func simulate(t *testing.T, cfg simConfig) *History {
	t.Helper()
	rec := NewRecorder()
	keys := HotKeys(cfg.keys)
	services := make([]string, len(keys))
	for i, k := range keys {
		services[i] = k.Name
	}
	s := newSimStore(cfg.bugs, cfg.seed, rec, cfg.agents, services)
	var wg sync.WaitGroup
	for c := 0; c < cfg.clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.seed, uint64(c)))
			client := rec.NewClient()
			seen := make(map[chain.Key]uint64)
			seq := 0
			for i := 0; i < cfg.opsPerClient; i++ {
				key := keys[rng.IntN(len(keys))]
				op := Operation{Client: client, Key: key}
				switch r := rng.IntN(100); {
				case r < 35:
					op.Kind = OpGet
				case r < 55:
					op.Kind = OpPut
				case r < 85:
					op.Kind = OpCAS
					op.Expect = seen[key]
				default:
					op.Kind = OpDelete
				}
				if op.Kind == OpPut || op.Kind == OpCAS {
					seq++
					op.Value = UniqueValue(client, seq)
				}
				unknown := rng.IntN(1000) < cfg.unknownPct
				p := rec.Begin(op)
				// Simulated network latency around the commit point, so
				// operations overlap as they do against a real cluster.
				time.Sleep(time.Duration(rng.IntN(150)) * time.Microsecond)
				out := s.do(op, unknown, rng.IntN(2) == 0)
				time.Sleep(time.Duration(rng.IntN(150)) * time.Microsecond)
				got := p.End(out)
				if got.Outcome == OutcomeUnknown {
					client = rec.NewClient() // retire the logical client
					continue
				}
				if op.Kind == OpGet {
					if got.Found {
						seen[key] = got.Index
					} else {
						seen[key] = 0
					}
				}
				if op.Kind == OpCAS && !got.Applied {
					seen[key] = got.Index
				}
				if (op.Kind == OpPut || op.Kind == OpCAS) && got.Applied {
					seen[key] = got.Index
				}
				if op.Kind == OpDelete {
					seen[key] = 0
				}
			}
		}()
	}
	wg.Wait()
	s.finish(keys)

	h := &History{Name: fmt.Sprintf("sim-%d", cfg.seed), Ops: rec.Ops(), Journals: map[string][]JournalRecord{}}
	for _, n := range []string{"n1", "n2", "n3"} {
		j := make([]JournalRecord, len(s.journal))
		for i, r := range s.journal {
			r.Node = n
			j[i] = r
		}
		h.Journals[n] = j
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		h.Finals = append(h.Finals, NodeFinal{Node: n, AppliedIndex: s.index, Hash: "h"})
	}
	for _, w := range s.sessions {
		h.Watches = append(h.Watches, *w)
	}
	return h
}
