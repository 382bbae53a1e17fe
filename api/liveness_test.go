package api

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// runProber runs p until the returned stop is called and reports whether
// it called frozen.
func runProber(p *streamProber) (frozenCh <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.run(ctx, func() { close(ch) })
	}()
	return ch, func() { cancel(); wg.Wait() }
}

// TestStreamProberPings: once the server accepts pings, an idle stream is
// probed with pings; a ping that is answered keeps it, one that is not
// takes the server for frozen. (No Status probe is involved: conn is nil,
// and a Status probe would panic on it.)
func TestStreamProberPings(t *testing.T) {
	t.Parallel()
	t.Run("answered", func(t *testing.T) {
		t.Parallel()
		var p *streamProber
		pings := make(chan struct{}, 100)
		p = newStreamProber(nil, 10*time.Millisecond, 5*time.Second, func() error {
			go p.touch() // the server's progress message
			select {
			case pings <- struct{}{}:
			default:
			}
			return nil
		})
		p.pingable.Store(true)
		frozen, stop := runProber(p)
		defer stop()
		for range 5 { // five probes, each answered
			select {
			case <-pings:
			case <-frozen:
				t.Fatal("prober took a server that answers every ping for frozen")
			case <-time.After(10 * time.Second):
				t.Fatal("no ping within 10s of an idle stream with ProbeAfter 10ms")
			}
		}
	})
	t.Run("unanswered", func(t *testing.T) {
		t.Parallel()
		p := newStreamProber(nil, 10*time.Millisecond, 20*time.Millisecond, func() error { return nil })
		p.pingable.Store(true)
		frozen, stop := runProber(p)
		defer stop()
		select {
		case <-frozen:
		case <-time.After(10 * time.Second):
			t.Fatal("prober did not take a server that never answers a ping for frozen within 10s")
		}
	})
	t.Run("send fails", func(t *testing.T) {
		t.Parallel()
		// A failed send means the stream is ending (its reader reports
		// why), not a frozen server.
		p := newStreamProber(nil, 10*time.Millisecond, 20*time.Millisecond, nil)
		p.ping = func() error { return errors.New("stream closed") }
		if !p.pingProbe(context.Background()) {
			t.Fatal("pingProbe with a failing send = not alive, want alive (the stream's reader reports the failure)")
		}
	})
}
