package servertest

import (
	"io"
	"net"
	"sync"
	"time"
)

// linkTable holds one TCP proxy per directed Raft link (source node name,
// destination Raft address) and cuts the links of isolated nodes.
type linkTable struct {
	mu       sync.Mutex // protects every field
	links    map[[2]string]*link
	owner    map[string]string // Raft address -> node name
	isolated map[string]bool
	closed   bool
}

func newLinkTable() *linkTable {
	return &linkTable{links: map[[2]string]*link{}, owner: map[string]string{}, isolated: map[string]bool{}}
}

// refused is an address nothing listens on (port 1): dialled when a link
// cannot be set up, so a failure never bypasses the proxy.
const refused = "127.0.0.1:1"

// dialer is the DialOverride of node src.
func (lt *linkTable) dialer(src string) func(string) string {
	return func(dst string) string {
		lt.mu.Lock()
		defer lt.mu.Unlock()
		if lt.closed {
			return refused
		}
		k := [2]string{src, dst}
		l, ok := lt.links[k]
		if !ok {
			var err error
			l, err = newLink(dst)
			if err != nil {
				return refused
			}
			lt.links[k] = l
		}
		l.setCut(lt.isolated[src] || lt.isolated[lt.owner[dst]])
		return l.addr()
	}
}

func (lt *linkTable) setOwner(raftAddr, name string) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.owner[raftAddr] = name
}

// setIsolated cuts (or restores) every link from or to node name.
func (lt *linkTable) setIsolated(name string, isolated bool) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.isolated[name] = isolated
	for k, l := range lt.links {
		if k[0] == name || lt.owner[k[1]] == name {
			l.setCut(lt.isolated[k[0]] || lt.isolated[lt.owner[k[1]]])
		}
	}
}

func (lt *linkTable) close() {
	lt.mu.Lock()
	lt.closed = true
	links := lt.links
	lt.links = map[[2]string]*link{}
	lt.mu.Unlock()
	for _, l := range links {
		l.close()
	}
}

// link is a TCP proxy to one target that can drop every connection and
// refuse new ones while cut.
type link struct {
	target string
	lis    net.Listener
	wg     sync.WaitGroup // accept loop and pipes

	mu    sync.Mutex // protects cut and conns
	cut   bool
	conns map[net.Conn]struct{}
}

func newLink(target string) (*link, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &link{target: target, lis: lis, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (l *link) addr() string { return l.lis.Addr().String() }

func (l *link) acceptLoop() {
	defer l.wg.Done()
	for {
		down, err := l.lis.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", l.target, time.Second)
		if err != nil {
			_ = down.Close()
			continue
		}
		if !l.track(down, up) {
			continue
		}
		l.wg.Add(2)
		go l.pipe(down, up)
		go l.pipe(up, down)
	}
}

// track registers a proxied connection pair unless the link is cut.
func (l *link) track(a, b net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		_ = a.Close()
		_ = b.Close()
		return false
	}
	l.conns[a], l.conns[b] = struct{}{}, struct{}{}
	return true
}

func (l *link) pipe(dst, src net.Conn) {
	defer l.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	l.mu.Lock()
	delete(l.conns, dst)
	delete(l.conns, src)
	l.mu.Unlock()
}

func (l *link) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for c := range l.conns {
			_ = c.Close()
		}
	}
}

func (l *link) close() {
	_ = l.lis.Close()
	l.setCut(true)
	l.wg.Wait()
}
