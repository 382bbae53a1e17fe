package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/chainstore/chainstore/chain"
)

// replay rebuilds the store from the committed sequence, index by index.
type replay struct {
	recs     []JournalRecord
	pos      int
	store    *chain.MemStore
	keyIndex map[chain.Key]uint64 // ModifyIndex or deletion index per key
	err      error                // first record that could not be replayed
}

func newReplay(m *mergedJournal) *replay {
	return &replay{recs: m.recs, store: chain.NewMemStore(), keyIndex: make(map[chain.Key]uint64)}
}

// advance applies every record with index <= idx.
func (r *replay) advance(idx uint64) {
	for r.pos < len(r.recs) && r.recs[r.pos].Index <= idx {
		rec := r.recs[r.pos]
		r.pos++
		if !rec.Applied {
			continue
		}
		switch rec.Op {
		case "upsert", "upsert-cas":
			e, err := chain.DecodeCanonical(rec.Entry)
			if err != nil {
				if r.err == nil {
					r.err = fmt.Errorf("index %d: decode journal entry: %w", rec.Index, err)
				}
				continue
			}
			r.store.Upsert(e)
			r.keyIndex[chain.KeyOf(e.GetKind(), e.GetName())] = rec.Index
		case "delete", "delete-cas":
			// Deleting an absent entry changes nothing (no tombstone).
			k := chain.KeyOf(rec.Key.Kind, rec.Key.Name)
			if r.store.GetEntry(k) != nil {
				r.store.Delete(k)
				r.keyIndex[k] = rec.Index
			}
		}
	}
}

// last is the highest index in the sequence.
func (r *replay) last() uint64 {
	if len(r.recs) == 0 {
		return 0
	}
	return r.recs[len(r.recs)-1].Index
}

// compiled is a chain compiled from the replay, in comparable form.
type compiled struct {
	json  string // canonical JSON of the chain, "" on error
	err   string
	index uint64 // highest index of the keys the compile read
}

func (r *replay) compile(fn CompileFunc, service string) compiled {
	res, err := fn(r.store, service)
	var c compiled
	if res != nil {
		for _, k := range res.Reads {
			if i := r.keyIndex[chain.KeyOf(k.Kind, k.Name)]; i > c.index {
				c.index = i
			}
		}
	}
	if err != nil {
		c.err = err.Error()
		return c
	}
	b, merr := json.Marshal(res.Chain)
	if merr != nil {
		c.err = "marshal: " + merr.Error()
		return c
	}
	c.json = string(b)
	return c
}

// canonicalChain re-encodes delivered chain JSON through the chain types,
// so that field order and omitted defaults compare equal.
func canonicalChain(raw []byte) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "", nil
	}
	var c chain.CompiledChain
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", fmt.Errorf("decode delivered chain: %w", err)
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("encode delivered chain: %w", err)
	}
	return string(b), nil
}

// delivery is one version event of one session, flattened for sorting.
type delivery struct {
	session int
	event   int
	ev      WatchEvent
	canon   string
}

// checkWatches checks every agent subscription (docs/reliability.md, G4):
// delivered indexes strictly increase; one hash is one chain; each
// delivered chain equals the chain compiled from the committed entries at
// its index (and, optionally, the index is that of the chain's read set);
// every session ends on the final chain.
func checkWatches(sessions []WatchSession, m *mergedJournal, haveJournals bool, cfg CheckConfig, vs *violations) {
	if len(sessions) == 0 {
		return
	}
	var all []delivery
	hashChain := make(map[string]string) // service|hash -> canonical chain or error
	for si, s := range sessions {
		var prev *WatchEvent
		afterReset := false
		for ei, ev := range s.Events {
			if ev.Reset {
				afterReset = true
				continue
			}
			canon, err := canonicalChain(ev.Chain)
			if err != nil {
				vs.add(CheckWatchContent, "agent %s %s event %d: %v", s.Agent, s.Service, ei, err)
				continue
			}
			if prev != nil {
				switch {
				case ev.Index < prev.Index:
					vs.add(CheckWatchOrder, "agent %s %s: index went back from %d to %d", s.Agent, s.Service, prev.Index, ev.Index)
				case ev.Index == prev.Index && !afterReset:
					vs.add(CheckWatchOrder, "agent %s %s: index %d delivered twice", s.Agent, s.Service, ev.Index)
				case ev.Index == prev.Index && ev.Hash != prev.Hash:
					vs.add(CheckWatchOrder, "agent %s %s: after reset, index %d came with hash %s, had %s", s.Agent, s.Service, ev.Index, ev.Hash, prev.Hash)
				}
			}
			afterReset = false
			e := ev
			prev = &e
			hk := strings.ToLower(s.Service) + "|" + ev.Hash
			content := canon + "|err=" + ev.Error
			if ev.Hash != "" {
				if have, ok := hashChain[hk]; ok && have != content {
					vs.add(CheckWatchHash, "service %s hash %s names two different chains (agent %s index %d)", s.Service, ev.Hash, s.Agent, ev.Index)
				} else if !ok {
					hashChain[hk] = content
				}
			}
			all = append(all, delivery{session: si, event: ei, ev: ev, canon: canon})
		}
	}
	lastIdx := make([]int, len(sessions))
	for i := range lastIdx {
		lastIdx[i] = -1
	}
	for i, d := range all {
		lastIdx[d.session] = i
	}

	if cfg.Compile == nil || !haveJournals {
		checkWatchFinalAgreement(sessions, all, lastIdx, vs)
		return
	}
	// Walk the committed sequence once, compiling each service at each
	// delivered index (and at the end).
	order := make([]int, len(all))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return all[order[a]].ev.Index < all[order[b]].ev.Index })
	rp := newReplay(m)
	cache := make(map[string]compiled)
	for _, i := range order {
		d := all[i]
		s := sessions[d.session]
		if d.ev.Index > rp.last() {
			vs.add(CheckWatchContent, "agent %s %s: delivered index %d is beyond the last committed index %d", s.Agent, s.Service, d.ev.Index, rp.last())
			continue
		}
		rp.advance(d.ev.Index)
		ck := fmt.Sprintf("%s@%d", strings.ToLower(s.Service), d.ev.Index)
		want, ok := cache[ck]
		if !ok {
			want = rp.compile(cfg.Compile, s.Service)
			cache[ck] = want
		}
		if want.json != d.canon || want.err != d.ev.Error {
			vs.add(CheckWatchContent, "agent %s %s index %d: delivered %s, compiled from the committed entries %s",
				s.Agent, s.Service, d.ev.Index, describeChain(d.canon, d.ev.Error), describeChain(want.json, want.err))
		}
		if cfg.ChainIndex && want.index != d.ev.Index {
			vs.add(CheckWatchIndex, "agent %s %s: delivered index %d, but the chain's entries were last changed at %d", s.Agent, s.Service, d.ev.Index, want.index)
		}
	}
	if rp.err != nil {
		vs.add(CheckJournal, "replay: %v", rp.err)
	}
	rp.advance(rp.last())
	finals := make(map[string]compiled)
	for si, s := range sessions {
		svc := strings.ToLower(s.Service)
		want, ok := finals[svc]
		if !ok {
			want = rp.compile(cfg.Compile, s.Service)
			finals[svc] = want
		}
		if lastIdx[si] < 0 {
			vs.add(CheckWatchFinal, "agent %s %s: no version delivered; final chain is %s", s.Agent, s.Service, describeChain(want.json, want.err))
			continue
		}
		got := all[lastIdx[si]]
		if got.canon != want.json || got.ev.Error != want.err {
			vs.add(CheckWatchFinal, "agent %s %s: ended on index %d %s; final chain (index %d) is %s",
				s.Agent, s.Service, got.ev.Index, describeChain(got.canon, got.ev.Error), want.index, describeChain(want.json, want.err))
		}
	}
}

// checkWatchFinalAgreement is the final check without a compiler: every
// session of a service ends on the same hash.
func checkWatchFinalAgreement(sessions []WatchSession, all []delivery, lastIdx []int, vs *violations) {
	end := make(map[string]delivery)
	for si, s := range sessions {
		if lastIdx[si] < 0 {
			vs.add(CheckWatchFinal, "agent %s %s: no version delivered", s.Agent, s.Service)
			continue
		}
		svc := strings.ToLower(s.Service)
		d := all[lastIdx[si]]
		ref, ok := end[svc]
		if !ok {
			end[svc] = d
			continue
		}
		if ref.ev.Hash != d.ev.Hash || ref.canon != d.canon {
			vs.add(CheckWatchFinal, "service %s: agent %s ended on index %d, agent %s on index %d",
				s.Service, sessions[ref.session].Agent, ref.ev.Index, s.Agent, d.ev.Index)
		}
	}
}

// describeChain abbreviates a chain for messages: the workload value in
// its subset filter is what differs between versions.
func describeChain(canon, errMsg string) string {
	if errMsg != "" {
		return "error " + errMsg
	}
	if canon == "" {
		return "(empty)"
	}
	if i := strings.Index(canon, "Service.Meta.rev == "); i >= 0 {
		rest := canon[i+len("Service.Meta.rev == "):]
		if j := strings.Index(rest, ",\""); j >= 0 {
			rest = rest[:j]
		}
		return "chain{rev " + strings.Trim(rest, `\"`) + "}"
	}
	if strings.Contains(canon, `"Default":true`) {
		return "default chain"
	}
	if len(canon) > 120 {
		return canon[:120] + "..."
	}
	return canon
}
