package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// benchEntry returns the JSON of service-defaults "<prefix>-<key>" padded
// to size bytes (when size allows) with Meta values of at most 500 bytes
// (entries allow 512 per value); seq makes every write different, so the
// server's no-op detection never skips one.
func benchEntry(prefix string, key, seq, size int) []byte {
	head := fmt.Sprintf(`{"Kind":"service-defaults","Name":"%s-%d","Protocol":"http","Meta":{"seq":"%d"`, prefix, key, seq)
	const tail = `}}`
	b := make([]byte, 0, max(size, len(head)+len(tail)))
	b = append(b, head...)
	remaining := size - len(head) - len(tail)
	for i := 0; ; i++ {
		overhead := len(fmt.Sprintf(`,"p%d":""`, i))
		if remaining <= overhead {
			break
		}
		n := min(500, remaining-overhead)
		b = fmt.Appendf(b, `,"p%d":"%s"`, i, strings.Repeat("x", n))
		remaining -= overhead + n
	}
	return append(b, tail...)
}

// kvOpts are the put/get/cas flags.
type kvOpts struct {
	total, keys, entrySize int
	consistency            string
	prefix                 string
}

func (o *kvOpts) register(fs *flag.FlagSet, totalDefault, keysDefault int) {
	fs.IntVar(&o.total, "total", totalDefault, "total number of requests")
	fs.IntVar(&o.keys, "keys", keysDefault, "number of distinct entries")
	fs.IntVar(&o.entrySize, "entry-size", 256, "size of an entry's JSON in bytes")
	fs.StringVar(&o.prefix, "prefix", "bench", "name prefix of the entries written")
}

func (o *kvOpts) validate() error {
	switch {
	case o.total < 1:
		return fmt.Errorf("--total must be at least 1, got %d", o.total)
	case o.keys < 1:
		return fmt.Errorf("--keys must be at least 1, got %d", o.keys)
	case o.entrySize < 1:
		return fmt.Errorf("--entry-size must be at least 1, got %d", o.entrySize)
	case o.prefix == "":
		return errors.New("--prefix must not be empty")
	}
	return nil
}

func parseConsistency(s string) (chainstorev1.Consistency, error) {
	switch s {
	case "stale":
		return chainstorev1.Consistency_CONSISTENCY_STALE, nil
	case "default":
		return chainstorev1.Consistency_CONSISTENCY_DEFAULT, nil
	case "consistent":
		return chainstorev1.Consistency_CONSISTENCY_CONSISTENT, nil
	}
	return 0, fmt.Errorf("--consistency must be stale, default or consistent, got %q", s)
}

func putFlags(fs *flag.FlagSet) func(context.Context, *env) ([]*Result, error) {
	var o kvOpts
	o.register(fs, 10000, 1000)
	return func(ctx context.Context, e *env) ([]*Result, error) {
		if err := o.validate(); err != nil {
			return nil, err
		}
		r, err := benchPut(ctx, e, o, "")
		return []*Result{r}, err
	}
}

func kvParams(e *env, o kvOpts) map[string]any {
	return map[string]any{"clients": e.opts.clients, "conns": e.opts.conns, "to": e.opts.to,
		"total": o.total, "keys": o.keys, "entry_size": o.entrySize}
}

// benchPut writes o.total entries over o.keys names.
func benchPut(ctx context.Context, e *env, o kvOpts, name string) (*Result, error) {
	p, err := dialPool(ctx, e.opts, e.opts.conns)
	if err != nil {
		return nil, err
	}
	defer p.close()
	var lats []time.Duration
	var ec errorCounter
	var el time.Duration
	cost := measureCost(ctx, e, func() int {
		lats, ec, el = runOps(ctx, e, "put", e.opts.clients, o.total, func(ctx context.Context, w, seq int) error {
			_, err := p.get(w).Apply(ctx, &chainstorev1.ApplyRequest{Entry: benchEntry(o.prefix, seq%o.keys, seq, o.entrySize)})
			return err
		})
		return len(lats)
	})
	if name == "" {
		name = fmt.Sprintf("put %d clients", e.opts.clients)
	}
	r := newResult(name, "put", kvParams(e, o), lats, ec, el)
	r.ServerCost = cost
	return r, ctx.Err()
}

// populate writes every key once (so reads find them).
func populate(ctx context.Context, e *env, p *pool, o kvOpts) error {
	var failed atomic.Int64
	var first error
	var once sync.Once
	_, _, _ = runOps(ctx, &env{stderr: e.stderr}, "populate", min(16, o.keys), o.keys, func(ctx context.Context, w, seq int) error {
		_, err := p.get(w).Apply(ctx, &chainstorev1.ApplyRequest{Entry: benchEntry(o.prefix, seq, seq, o.entrySize)})
		if err != nil {
			failed.Add(1)
			once.Do(func() { first = err })
		}
		return err
	})
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("populate: %d of %d writes failed: %w", n, o.keys, first)
	}
	return ctx.Err()
}

func getFlags(fs *flag.FlagSet) func(context.Context, *env) ([]*Result, error) {
	var o kvOpts
	o.register(fs, 10000, 1000)
	fs.StringVar(&o.consistency, "consistency", "consistent", "read mode: stale, default or consistent")
	return func(ctx context.Context, e *env) ([]*Result, error) {
		if err := o.validate(); err != nil {
			return nil, err
		}
		r, err := benchGet(ctx, e, o, "")
		return []*Result{r}, err
	}
}

// benchGet populates o.keys entries, then reads o.total times.
func benchGet(ctx context.Context, e *env, o kvOpts, name string) (*Result, error) {
	mode, err := parseConsistency(o.consistency)
	if err != nil {
		return nil, err
	}
	p, err := dialPool(ctx, e.opts, e.opts.conns)
	if err != nil {
		return nil, err
	}
	defer p.close()
	if err := populate(ctx, e, p, o); err != nil {
		return nil, err
	}
	var notFound atomic.Int64
	lats, ec, el := runOps(ctx, e, "get", e.opts.clients, o.total, func(ctx context.Context, w, seq int) error {
		resp, err := p.get(w).Get(ctx, &chainstorev1.GetRequest{
			Kind:    "service-defaults",
			Name:    o.prefix + "-" + strconv.Itoa(seq%o.keys),
			Options: &chainstorev1.QueryOptions{Consistency: mode},
		})
		if err == nil && !resp.GetFound() {
			notFound.Add(1)
		}
		return err
	})
	if name == "" {
		name = fmt.Sprintf("get %s %d clients", o.consistency, e.opts.clients)
	}
	params := kvParams(e, o)
	params["consistency"] = o.consistency
	r := newResult(name, "get", params, lats, ec, el)
	if n := notFound.Load(); n > 0 {
		r.Extra = map[string]any{"not_found": n}
	}
	return r, ctx.Err()
}

func casFlags(fs *flag.FlagSet) func(context.Context, *env) ([]*Result, error) {
	var o kvOpts
	o.register(fs, 5000, 1)
	return func(ctx context.Context, e *env) ([]*Result, error) {
		if err := o.validate(); err != nil {
			return nil, err
		}
		r, err := benchCAS(ctx, e, o, "")
		return []*Result{r}, err
	}
}

// benchCAS: every client does check-and-set writes on o.keys entries
// (default 1: maximal contention). A client starts from the index a read
// returns and then uses the index each CAS answer reports (the new index
// when applied, the current one on a conflict), as a real CAS loop does.
// Latency is that of the CAS call; applied and conflicts are counted.
func benchCAS(ctx context.Context, e *env, o kvOpts, name string) (*Result, error) {
	p, err := dialPool(ctx, e.opts, e.opts.conns)
	if err != nil {
		return nil, err
	}
	defer p.close()
	if err := populate(ctx, e, p, o); err != nil {
		return nil, err
	}
	// known[w][key] is client w's latest known ModifyIndex of key.
	known := make([]map[int]uint64, e.opts.clients)
	for i := range known {
		known[i] = make(map[int]uint64)
	}
	var applied, conflicts atomic.Int64
	lats, ec, el := runOps(ctx, e, "cas", e.opts.clients, o.total, func(ctx context.Context, w, seq int) error {
		key := seq % o.keys
		c := p.get(w)
		idx, ok := known[w][key]
		if !ok {
			resp, err := c.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: o.prefix + "-" + strconv.Itoa(key)})
			if err != nil {
				return err
			}
			idx = resp.GetModifyIndex()
		}
		resp, err := c.Apply(ctx, &chainstorev1.ApplyRequest{Entry: benchEntry(o.prefix, key, seq, o.entrySize), Cas: true, ModifyIndex: idx})
		if err != nil {
			delete(known[w], key)
			return err
		}
		known[w][key] = resp.GetIndex()
		if resp.GetApplied() {
			applied.Add(1)
		} else {
			conflicts.Add(1)
		}
		return nil
	})
	if name == "" {
		name = fmt.Sprintf("cas %d clients on %d keys", e.opts.clients, o.keys)
	}
	r := newResult(name, "cas", kvParams(e, o), lats, ec, el)
	r.Extra = map[string]any{"applied": applied.Load(), "conflicts": conflicts.Load()}
	if el.Seconds() > 0 {
		r.Extra["applied_per_sec"] = float64(int(float64(applied.Load())/el.Seconds()*10)) / 10
	}
	return r, ctx.Err()
}
