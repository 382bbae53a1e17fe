package xdsserver

import (
	"strings"
	"sync"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// guard wraps the caches' state-of-the-world watches against two ways a
// linear cache would answer at once when it should not. A linear cache
// answers a request at once, changed or not, when its version_info is
// empty or carries another cache's prefix (a new stream, or a client
// coming from another server): that is how such a client gets
// everything. Two cases go wrong:
//
//   - A NACK carries the last version the client accepted, which is empty
//     (or another server's) when it rejected the first response of this
//     server on the stream. The cache would send the rejected resources
//     again, the client would NACK them again, in a loop (§6.2, §6.7). guard
//     replaces such a NACK's version with this server's bare prefix: the
//     cache then answers only when a requested resource changes.
//   - Listeners and clusters are full-state types: a response that leaves
//     out a resource the client has tells it the resource was removed
//     (grpc-go then fails its RPCs). A client that reconnects from another
//     server asks at once, in no set order, for its listener and its
//     clusters, which this server publishes only once it follows the
//     chain the listener names. So a forced answer of a full-state type
//     that would leave out a requested name is held back (deferredWatch)
//     until every requested name is published, or Config.ReconnectHold
//     has passed (a name still missing then is missing); Run opens the
//     real watch.
//
// Delta watches pass through: delta responses list removals explicitly.
type guard struct {
	cachev3.Cache
	s *Server
}

func (g *guard) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, ch chan cachev3.Response) (func(), error) {
	forced := !strings.HasPrefix(req.GetVersionInfo(), g.s.prefix) // also true for ""
	if !forced {
		return g.Cache.CreateWatch(req, sub, ch)
	}
	if req.GetErrorDetail() != nil {
		if c, ok := proto.Clone(req).(*discoveryv3.DiscoveryRequest); ok {
			c.VersionInfo = g.s.prefix
			return g.Cache.CreateWatch(c, sub, ch)
		}
	}
	if t := req.GetTypeUrl(); t == resourcev3.ListenerType || t == resourcev3.ClusterType {
		if dw := g.s.deferWatch(g.Cache, req, sub, ch); dw != nil {
			return dw.stop, nil
		}
	}
	return g.Cache.CreateWatch(req, sub, ch)
}

// deferredWatch is a watch guard held back until Run has published what
// was queued. stop (the stream replaced or ended the watch) and start
// (Run) exclude each other.
type deferredWatch struct {
	cache cachev3.Cache
	req   *cachev3.Request
	sub   cachev3.Subscription
	ch    chan cachev3.Response

	deadline time.Time // when to answer anyway

	mu     sync.Mutex
	done   bool   // stopped, or started
	cancel func() // of the real watch, once started
}

// stopped reports whether the stream has stopped the watch (or it was
// started).
func (dw *deferredWatch) stopped() bool {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	return dw.done
}

// deferWatch returns a deferredWatch for req when some name it asks for
// is not published, or nil when the watch may be created now.
func (s *Server) deferWatch(c cachev3.Cache, req *cachev3.Request, sub cachev3.Subscription, ch chan cachev3.Response) *deferredWatch {
	s.mu.Lock()
	if s.allPublishedLocked(req) {
		s.mu.Unlock()
		return nil
	}
	dw := &deferredWatch{cache: c, req: req, sub: sub, ch: ch, deadline: time.Now().Add(s.cfg.ReconnectHold)}
	s.deferred = append(s.deferred, dw)
	s.mu.Unlock()
	s.logger.Debug("holding back an answer until its resources are published",
		"type", req.GetTypeUrl(), "names", req.GetResourceNames(), "node", req.GetNode().GetId(), "version", req.GetVersionInfo())
	select { // Run must learn the deadline
	case s.wake <- struct{}{}:
	default:
	}
	return dw
}

// allPublishedLocked reports whether every name req asks for is in the
// caches.
func (s *Server) allPublishedLocked(req *cachev3.Request) bool {
	published := s.published[req.GetTypeUrl()]
	for _, n := range req.GetResourceNames() {
		if _, ok := published[n]; !ok {
			return false
		}
	}
	return true
}

// start opens the real watch unless the stream has stopped this one.
func (dw *deferredWatch) start() error {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	if dw.done {
		return nil
	}
	dw.done = true
	cancel, err := dw.cache.CreateWatch(dw.req, dw.sub, dw.ch)
	dw.cancel = cancel
	return err
}

// stop is the watch's cancel function, called by the stream.
func (dw *deferredWatch) stop() {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	dw.done = true
	if dw.cancel != nil {
		dw.cancel()
	}
}

// releaseDeferred is called by Run after each round: it opens the
// deferred watches whose names are all published now or whose hold has
// run out, drops those the stream stopped, and returns the earliest
// deadline of those left (zero if none).
func (s *Server) releaseDeferred(now time.Time) (next time.Time) {
	var ready []*deferredWatch
	s.mu.Lock()
	keep := s.deferred[:0]
	for _, dw := range s.deferred {
		switch {
		case dw.stopped():
		case s.allPublishedLocked(dw.req) || !now.Before(dw.deadline):
			ready = append(ready, dw)
		default:
			keep = append(keep, dw)
			if next.IsZero() || dw.deadline.Before(next) {
				next = dw.deadline
			}
		}
	}
	clear(s.deferred[len(keep):])
	s.deferred = keep
	s.mu.Unlock()
	for _, dw := range ready {
		if err := dw.start(); err != nil {
			s.logger.Error("cannot open a deferred watch", "type", dw.req.GetTypeUrl(), "error", err)
		}
	}
	return next
}
