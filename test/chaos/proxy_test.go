package chaos

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/testutil"
)

// echoServer accepts connections on loopback and echoes every line back.
// It counts bytes received so tests can see whether requests arrived.
type echoServer struct {
	ln       net.Listener
	received atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadBytes('\n')
					s.received.Add(int64(len(line)))
					if len(line) > 0 {
						if _, werr := c.Write(line); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func newTestProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := NewProxy("127.0.0.1:0", target)
	if err != nil {
		t.Fatalf("NewProxy: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dialProxy(t *testing.T, p *Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip writes a line and reads the echo within timeout.
func roundTrip(c net.Conn, r *bufio.Reader, msg string, timeout time.Duration) (string, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return line[:len(line)-1], nil
}

// dialRoundTrip dials the proxy and does one round trip. The proxy resets a
// refused connection right after accepting it, so the reset may surface in
// the dial itself or in the first read.
func dialRoundTrip(p *Proxy, msg string) error {
	c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_, err = roundTrip(c, bufio.NewReader(c), msg, 2*time.Second)
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxyForwards(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	p := newTestProxy(t, srv.ln.Addr().String())
	c, r := dialProxy(t, p)
	for _, msg := range []string{"a", "hello", string(make([]byte, 0)) + "xyz"} {
		got, err := roundTrip(c, r, msg, 2*time.Second)
		if err != nil || got != msg {
			t.Fatalf("roundTrip(%q) = %q, %v; want %q, nil", msg, got, err, msg)
		}
	}
	// A large payload crosses in several chunks and arrives intact.
	big := make([]byte, 3*chunkSize+17)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	got, err := roundTrip(c, r, string(big), 5*time.Second)
	if err != nil || got != string(big) {
		t.Fatalf("big roundTrip: len %d err %v; want len %d", len(got), err, len(big))
	}
	if st := p.Stats(); st.Accepted != 1 || st.Live != 1 {
		t.Errorf("Stats() = %+v, want 1 accepted, 1 live", st)
	}
}

func TestProxyPause(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		dir          Dir
		wantArrives  bool // does the request reach the server while paused?
		wantEchoBack bool // does the answer reach the client while paused?
	}{
		"up":   {dir: Up, wantArrives: false},
		"down": {dir: Down, wantArrives: true},
		"both": {dir: Both, wantArrives: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := newEchoServer(t)
			p := newTestProxy(t, srv.ln.Addr().String())
			c, r := dialProxy(t, p)
			if _, err := roundTrip(c, r, "warm", 2*time.Second); err != nil {
				t.Fatalf("warm-up: %v", err)
			}
			base := srv.received.Load()
			p.Pause(tc.dir)
			_, err := roundTrip(c, r, "held", 300*time.Millisecond)
			if !isTimeout(err) {
				t.Fatalf("roundTrip while paused %s: err = %v, want timeout", tc.dir, err)
			}
			if tc.wantArrives {
				testutil.Poll(t, 2*time.Second, "request to reach server", func() bool {
					return srv.received.Load() > base
				})
			} else if got := srv.received.Load(); got != base {
				t.Fatalf("server received %d bytes while up-link paused", got-base)
			}
			// Heal delivers the held bytes: the echo of "held" arrives.
			p.Heal()
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, err := r.ReadString('\n')
			if err != nil || line != "held\n" {
				t.Fatalf("after heal read %q, %v; want held", line, err)
			}
			_ = c.SetReadDeadline(time.Time{})
			if got, err := roundTrip(c, r, "after", 2*time.Second); err != nil || got != "after" {
				t.Fatalf("after heal roundTrip = %q, %v", got, err)
			}
		})
	}
}

func TestProxyPauseHoldsNewConnections(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	p := newTestProxy(t, srv.ln.Addr().String())
	p.Pause(Both)
	c, r := dialProxy(t, p) // accepted, but nothing flows
	if _, err := roundTrip(c, r, "x", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("roundTrip on new conn while paused: %v, want timeout", err)
	}
	p.Resume(Both)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "x\n" {
		t.Fatalf("after resume read %q, %v", line, err)
	}
}

func TestProxyBlackhole(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	p := newTestProxy(t, srv.ln.Addr().String())
	c, r := dialProxy(t, p)
	if _, err := roundTrip(c, r, "warm", 2*time.Second); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	p.Blackhole()
	// The live connection is reset.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("read on blackholed conn: err = %v, want reset/EOF", err)
	}
	// New connections are refused: accepted then reset, so the dial or the
	// first read fails.
	if err := dialRoundTrip(p, "x"); err == nil || isTimeout(err) {
		t.Fatalf("roundTrip on new conn during blackhole: %v, want reset", err)
	}
	testutil.Poll(t, 2*time.Second, "refused counter", func() bool { return p.Stats().Refused >= 1 })
	p.Heal()
	c3, r3 := dialProxy(t, p)
	if got, err := roundTrip(c3, r3, "back", 2*time.Second); err != nil || got != "back" {
		t.Fatalf("after heal roundTrip = %q, %v", got, err)
	}
}

func TestProxyDelay(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		dir              Dir
		fixed, jitter    time.Duration
		wantMin, wantMax time.Duration
	}{
		"up fixed":       {dir: Up, fixed: 150 * time.Millisecond, wantMin: 150 * time.Millisecond, wantMax: 1500 * time.Millisecond},
		"both fixed":     {dir: Both, fixed: 100 * time.Millisecond, wantMin: 200 * time.Millisecond, wantMax: 1500 * time.Millisecond},
		"down jitter":    {dir: Down, fixed: 100 * time.Millisecond, jitter: 100 * time.Millisecond, wantMin: 100 * time.Millisecond, wantMax: 1500 * time.Millisecond},
		"cleared (zero)": {dir: Both, wantMin: 0, wantMax: 100 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := newEchoServer(t)
			p := newTestProxy(t, srv.ln.Addr().String())
			c, r := dialProxy(t, p)
			if _, err := roundTrip(c, r, "warm", 2*time.Second); err != nil {
				t.Fatalf("warm-up: %v", err)
			}
			p.SetDelay(tc.dir, tc.fixed, tc.jitter)
			for i := 0; i < 3; i++ {
				start := time.Now()
				got, err := roundTrip(c, r, "d", 3*time.Second)
				el := time.Since(start)
				if err != nil || got != "d" {
					t.Fatalf("roundTrip = %q, %v", got, err)
				}
				if el < tc.wantMin || el > tc.wantMax {
					t.Errorf("round trip took %v, want in [%v, %v]", el, tc.wantMin, tc.wantMax)
				}
			}
			p.Heal()
			start := time.Now()
			if _, err := roundTrip(c, r, "fast", 2*time.Second); err != nil {
				t.Fatalf("after heal: %v", err)
			}
			if el := time.Since(start); el > 100*time.Millisecond && tc.fixed > 0 {
				t.Errorf("after heal round trip took %v, want no delay", el)
			}
		})
	}
}

func TestProxyDelayKeepsOrder(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	p := newTestProxy(t, srv.ln.Addr().String())
	p.SetDelay(Up, 20*time.Millisecond, 40*time.Millisecond)
	c, r := dialProxy(t, p)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	want := []string{"1", "2", "3", "4", "5", "6", "7", "8"}
	for _, m := range want {
		if _, err := io.WriteString(c, m+"\n"); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	for _, m := range want {
		line, err := r.ReadString('\n')
		if err != nil || line != m+"\n" {
			t.Fatalf("read %q, %v; want %q", line, err, m)
		}
	}
}

func TestProxyReset(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	p := newTestProxy(t, srv.ln.Addr().String())
	c, r := dialProxy(t, p)
	if _, err := roundTrip(c, r, "warm", 2*time.Second); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	p.Reset()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("read after Reset: %v, want reset", err)
	}
	testutil.Poll(t, 2*time.Second, "live connections to drop", func() bool { return p.Stats().Live == 0 })
	// Reset is one-shot: a new connection works.
	c2, r2 := dialProxy(t, p)
	if got, err := roundTrip(c2, r2, "again", 2*time.Second); err != nil || got != "again" {
		t.Fatalf("after reset roundTrip = %q, %v", got, err)
	}
}

func TestProxyCloseJoins(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	p, err := NewProxy("127.0.0.1:0", srv.ln.Addr().String())
	if err != nil {
		t.Fatalf("NewProxy: %v", err)
	}
	c, r := dialProxy(t, p)
	p.Pause(Both)
	if _, err := io.WriteString(c, "pending\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a paused connection was live")
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("read after Close: %v, want reset", err)
	}
	if err := p.Close(); !errors.Is(err, ErrProxyClosed) {
		t.Fatalf("second Close = %v, want ErrProxyClosed", err)
	}
}

func TestProxyTargetDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Create the proxy while the listener still holds its port, so the
	// proxy cannot be given the same port, then close it: nothing listens
	// at the target any more.
	p := newTestProxy(t, ln.Addr().String())
	_ = ln.Close()
	if err := dialRoundTrip(p, "x"); err == nil || isTimeout(err) {
		t.Fatalf("roundTrip with target down: %v, want reset", err)
	}
}
