package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chain"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// classify maps a call's error to an outcome (docs/reliability.md, Client
// outcomes). Only errors documented as "nothing was written" are definite
// failures of a write; everything else after the request may have been
// sent is unknown.
func classify(err error, write bool) Outcome {
	if err == nil {
		return OutcomeOK
	}
	if !write {
		return OutcomeFail // a failed read has no effect either way
	}
	if info := api.ErrorInfo(err); info != nil {
		switch info.GetReason() {
		case api.ReasonNotLeader, api.ReasonNoLeader, api.ReasonInvalidEntry, api.ReasonGraphInvalid, api.ReasonEntryTooLarge:
			return OutcomeFail
		case api.ReasonUnknownOutcome:
			return OutcomeUnknown
		}
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.InvalidArgument, codes.ResourceExhausted:
			return OutcomeFail // rejected before anything was proposed
		}
	}
	return OutcomeUnknown
}

// trafficConfig shapes the client workload.
type trafficConfig struct {
	clients int
	keys    []chain.Key
	rate    float64 // total ops/s over all clients
	timeout time.Duration
	seed    uint64
}

// traffic runs concurrent clients doing put, linearizable get, CAS and
// delete on a few hot entries with unique values, recording every call.
type traffic struct {
	cfg   trafficConfig
	rec   *Recorder
	addrs []string
	count atomic.Int64
	fails atomic.Int64
	unk   atomic.Int64
	wg    sync.WaitGroup
}

func startTraffic(ctx context.Context, cfg trafficConfig, addrs []string) (*traffic, error) {
	tr := &traffic{cfg: cfg, rec: NewRecorder(), addrs: addrs}
	var clients []*api.Client
	for w := 0; w < cfg.clients; w++ {
		// Client w prefers server w % 3 and fails over to the others.
		k := w % len(addrs)
		order := append(append([]string{}, addrs[k:]...), addrs[:k]...)
		cl, err := newClient(order, cfg.timeout)
		if err != nil {
			for _, c := range clients {
				_ = c.Close()
			}
			return nil, err
		}
		clients = append(clients, cl)
	}
	for w, cl := range clients {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			defer func() { _ = cl.Close() }()
			tr.worker(ctx, w, cl)
		}()
	}
	return tr, nil
}

// wait joins the workers (cancel their context first).
func (tr *traffic) wait() { tr.wg.Wait() }

func (tr *traffic) worker(ctx context.Context, w int, cl *api.Client) {
	rng := rand.New(rand.NewPCG(tr.cfg.seed, uint64(w)))
	client := tr.rec.NewClient()
	seq := 0
	known := make(map[chain.Key]uint64) // this client's latest ModifyIndex per key (0: absent/unknown)
	interval := time.Duration(float64(time.Second) * float64(tr.cfg.clients) / tr.cfg.rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		key := tr.cfg.keys[rng.IntN(len(tr.cfg.keys))]
		op := Operation{Client: client, Key: key}
		switch r := rng.IntN(100); {
		case r < 30:
			op.Kind = OpGet
		case r < 55:
			op.Kind = OpPut
		case r < 85:
			op.Kind = OpCAS
			idx, ok := known[key]
			if !ok {
				op.Kind = OpGet // learn the index first
			}
			op.Expect = idx
		default:
			op.Kind = OpDelete
		}
		if op.Kind == OpPut || op.Kind == OpCAS {
			seq++
			op.Value = UniqueValue(client, seq)
		}
		got := tr.do(ctx, cl, op)
		tr.count.Add(1)
		switch got.Outcome {
		case OutcomeUnknown:
			tr.unk.Add(1)
			client = tr.rec.NewClient() // retire the logical client (Jepsen's rule)
			delete(known, key)
			continue
		case OutcomeFail:
			tr.fails.Add(1)
			continue
		}
		switch {
		case op.Kind == OpGet && got.Found:
			known[key] = got.Index
		case op.Kind == OpGet:
			known[key] = 0
		case op.Kind == OpDelete:
			known[key] = 0
		case got.Applied:
			known[key] = got.Index
		default:
			delete(known, key) // a failed CAS: re-read before the next one
		}
	}
}

// do performs one recorded call.
func (tr *traffic) do(ctx context.Context, cl *api.Client, op Operation) Operation {
	p := tr.rec.Begin(op)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tr.cfg.timeout)
	defer cancel()
	var out Operation
	var err error
	switch op.Kind {
	case OpGet:
		var resp *chainstorev1.GetResponse
		resp, err = cl.Get(cctx, &chainstorev1.GetRequest{Kind: string(op.Key.Kind), Name: op.Key.Name,
			Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_CONSISTENT}})
		if err == nil {
			out.Found = resp.GetFound()
			out.Index = resp.GetMeta().GetIndex()
			out.Server = resp.GetMeta().GetServedBy()
			if out.Found {
				out.Index = resp.GetModifyIndex()
				out.Got, err = ValueOfJSON(resp.GetEntry())
			}
		}
	case OpPut, OpCAS:
		e, eerr := EntryFor(op.Key, op.Value)
		if eerr != nil {
			panic(eerr) // the workload only uses supported kinds
		}
		raw, eerr := chain.EncodeEntry(e)
		if eerr != nil {
			panic(eerr)
		}
		var resp *chainstorev1.ApplyResponse
		resp, err = cl.Apply(cctx, &chainstorev1.ApplyRequest{Entry: raw, Cas: op.Kind == OpCAS, ModifyIndex: op.Expect})
		if err == nil {
			out.Applied, out.Index = resp.GetApplied(), resp.GetIndex()
		}
	case OpDelete:
		var resp *chainstorev1.DeleteResponse
		resp, err = cl.Delete(cctx, &chainstorev1.DeleteRequest{Kind: string(op.Key.Kind), Name: op.Key.Name})
		if err == nil {
			out.Applied, out.Index = resp.GetDeleted(), resp.GetIndex()
		}
	}
	out.Outcome = classify(err, op.Kind.IsWrite())
	if err != nil {
		out.Err = err.Error()
		if len(out.Err) > 160 {
			out.Err = out.Err[:160]
		}
	}
	return p.End(out)
}

// ---- watching agents ----

// agent is one watching agent: one Watch stream carrying a subscription
// per hot chain; on a stream error it reconnects to the next server and
// resumes each subscription from its last (index, hash).
type agent struct {
	name     string
	addrs    []string
	services []string
	rec      *Recorder

	mu       sync.Mutex // protects sessions, last
	sessions map[string]*WatchSession
	last     map[string]WatchEvent
	streams  int
}

func newAgent(name string, addrs, services []string, rec *Recorder) *agent {
	a := &agent{name: name, addrs: addrs, services: services, rec: rec,
		sessions: make(map[string]*WatchSession), last: make(map[string]WatchEvent)}
	for _, s := range services {
		a.sessions[s] = &WatchSession{Agent: name, Service: s}
	}
	return a
}

// run keeps a stream open until ctx is done.
func (a *agent) run(ctx context.Context) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		addr := a.addrs[attempt%len(a.addrs)]
		_ = a.stream(ctx, addr) // errors just mean "reconnect elsewhere"
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (a *agent) stream(ctx context.Context, addr string) error {
	cl, err := newClient([]string{addr}, 2*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := chainstorev1.NewChainServiceClient(cl.Conn()).Watch(sctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.streams++
	subs := make([]*chainstorev1.WatchSubscribe, len(a.services))
	for i, s := range a.services {
		last := a.last[s]
		subs[i] = &chainstorev1.WatchSubscribe{Id: uint64(i + 1), Chain: &chainstorev1.ChainRef{Service: s}, LastIndex: last.Index, LastHash: last.Hash}
	}
	a.mu.Unlock()
	for _, sub := range subs {
		if err := st.Send(&chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Subscribe{Subscribe: sub}}); err != nil {
			return err
		}
	}
	// A server that stops answering (paused, or cut off and stale) is
	// noticed through missing progress messages only after a while; the
	// stream is also recycled every few seconds so that an agent parked on
	// a stale server resumes elsewhere.
	recycle := time.AfterFunc(time.Duration(3000+rand.IntN(2000))*time.Millisecond, cancel)
	defer recycle.Stop()
	for {
		msg, err := st.Recv()
		if err != nil {
			return err
		}
		if r := msg.GetSubscriptionReset(); r != nil {
			a.record(r.GetSubscriptionId(), WatchEvent{Reset: true})
			continue
		}
		if u := msg.GetUnsubscribed(); u != nil && u.GetError() != "" {
			return fmt.Errorf("subscription %d refused: %s", u.GetSubscriptionId(), u.GetError())
		}
		if up := msg.GetUpdate(); up != nil {
			v := up.GetVersion()
			a.record(up.GetSubscriptionId(), WatchEvent{Index: v.GetIndex(), Hash: v.GetHash(), Chain: v.GetChain(), Error: v.GetError(), Server: addr})
		}
	}
}

func (a *agent) record(id uint64, ev WatchEvent) {
	if id == 0 || int(id) > len(a.services) {
		return
	}
	s := a.services[id-1]
	ev.Time = a.rec.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sessions[s].Events = append(a.sessions[s].Events, ev)
	if !ev.Reset {
		a.last[s] = ev
	}
}

// lastHash returns the hash of the last version delivered for s.
func (a *agent) lastHash(s string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last[s].Hash
}

func (a *agent) result() []WatchSession {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]WatchSession, 0, len(a.services))
	for _, s := range a.services {
		ws := *a.sessions[s]
		ws.Events = append([]WatchEvent(nil), ws.Events...)
		out = append(out, ws)
	}
	return out
}

// errTimeout reports a bounded wait that ran out.
var errTimeout = errors.New("timed out")
