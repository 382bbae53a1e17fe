package xdsserver

import (
	"cmp"
	"context"
	"slices"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// ClientStatus is one xDS stream as this server sees it.
type ClientStatus struct {
	// NodeID is the client's node.id (bootstrap).
	NodeID string
	// UserAgent is node.user_agent_name and its version ("gRPC Go
	// 1.85.0").
	UserAgent string
	// Peer is the client's address.
	Peer string
	// StreamID numbers the stream on this server (state-of-the-world and
	// delta streams are numbered separately).
	StreamID int64
	// Delta is true for an incremental (delta) stream.
	Delta bool
	// ConnectedSince is when the stream opened.
	ConnectedSince time.Time
	// Refused lists the listener names the server refused to follow
	// (MaxChains reached).
	Refused []string `json:",omitempty"`
	// Types holds one entry per resource type the client asked for, in the
	// publishing order (clusters, endpoints, listeners, routes), other
	// types last.
	Types []TypeStatus
}

// TypeStatus is the state of one resource type on one stream.
type TypeStatus struct {
	TypeURL string
	// Names are the resource names of the client's last request, sorted.
	Names []string
	// Sent is the version of the last response sent, SentAt when.
	Sent   string
	SentAt time.Time `json:",omitzero"`
	// Acked is the last version the client accepted, AckedAt when.
	Acked   string
	AckedAt time.Time `json:",omitzero"`
	// NACKs counts rejected responses; LastNACK is the error_detail of the
	// last one, LastNACKVersion the version it rejected.
	NACKs           uint64
	LastNACK        string    `json:",omitempty"`
	LastNACKVersion string    `json:",omitempty"`
	LastNACKAt      time.Time `json:",omitzero"`
}

// streamKey identifies a stream: the SotW and the delta server number
// their streams independently.
type streamKey struct {
	delta bool
	id    int64
}

type clientState struct {
	status ClientStatus // without Types
	types  map[string]*typeState
}

type typeState struct {
	TypeStatus
	nonce string // nonce of the last response sent
}

// Clients returns the status of every open xDS stream, sorted by node ID
// then stream (SotW first).
func (s *Server) Clients() []ClientStatus {
	s.mu.Lock()
	out := make([]ClientStatus, 0, len(s.clients))
	for _, c := range s.clients {
		st := c.status
		st.Refused = slices.Clone(st.Refused)
		for _, t := range c.types {
			ts := t.TypeStatus
			ts.Names = slices.Clone(ts.Names)
			st.Types = append(st.Types, ts)
		}
		slices.SortFunc(st.Types, func(a, b TypeStatus) int {
			return cmp.Or(cmp.Compare(typeRank(a.TypeURL), typeRank(b.TypeURL)), cmp.Compare(a.TypeURL, b.TypeURL))
		})
		out = append(out, st)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b ClientStatus) int {
		return cmp.Or(cmp.Compare(a.NodeID, b.NodeID), compareBool(a.Delta, b.Delta), cmp.Compare(a.StreamID, b.StreamID))
	})
	return out
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// typeRank orders the served types as they are published.
func typeRank(t string) int {
	if i := slices.Index(typeURLs[:], t); i >= 0 {
		return i
	}
	return len(typeURLs)
}

// callbacks records the state of every stream and hands the listener
// names clients ask for to Run. They run on go-control-plane's stream
// goroutines: they take s.mu briefly and never block.
type callbacks struct{ s *Server }

func (c callbacks) open(ctx context.Context, key streamKey) {
	st := &clientState{
		status: ClientStatus{StreamID: key.id, Delta: key.delta, ConnectedSince: time.Now()},
		types:  make(map[string]*typeState),
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		st.status.Peer = p.Addr.String()
	}
	c.s.mu.Lock()
	c.s.clients[key] = st
	c.s.mu.Unlock()
}

func (c callbacks) closed(key streamKey) {
	c.s.mu.Lock()
	delete(c.s.clients, key)
	c.s.mu.Unlock()
}

// request records one request: node, names, and whether it ACKs or NACKs
// the response with nonce.
func (c callbacks) request(key streamKey, node *corev3.Node, typeURL string, names []string, replace bool,
	nonce, version string, errDetail string, nack bool,
) {
	var refused []string
	if typeURL == resourcev3.ListenerType {
		refused = c.s.queueNames(names)
	}
	now := time.Now()
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	st := c.s.clients[key]
	if st == nil {
		return
	}
	if node != nil && st.status.NodeID == "" && st.status.UserAgent == "" {
		st.status.NodeID = node.GetId()
		st.status.UserAgent = node.GetUserAgentName()
		if v := node.GetUserAgentVersion(); v != "" {
			st.status.UserAgent += " " + v
		}
	}
	for _, r := range refused {
		if !slices.Contains(st.status.Refused, r) {
			st.status.Refused = append(st.status.Refused, r)
		}
	}
	ts := st.types[typeURL]
	if ts == nil {
		ts = &typeState{TypeStatus: TypeStatus{TypeURL: typeURL}}
		st.types[typeURL] = ts
	}
	if replace {
		ts.Names = slices.Sorted(slices.Values(names))
	} else {
		for _, n := range names {
			if !slices.Contains(ts.Names, n) {
				ts.Names = append(ts.Names, n)
			}
		}
		slices.Sort(ts.Names)
	}
	if nonce == "" || nonce != ts.nonce {
		return // a first request, or one about an older response
	}
	if nack {
		ts.NACKs++
		ts.LastNACK, ts.LastNACKVersion, ts.LastNACKAt = errDetail, ts.Sent, now
		return
	}
	if version != "" {
		ts.Acked, ts.AckedAt = version, now
	}
}

func (c callbacks) response(key streamKey, typeURL, nonce, version string) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	st := c.s.clients[key]
	if st == nil {
		return
	}
	ts := st.types[typeURL]
	if ts == nil {
		ts = &typeState{TypeStatus: TypeStatus{TypeURL: typeURL}}
		st.types[typeURL] = ts
	}
	ts.nonce, ts.Sent, ts.SentAt = nonce, version, time.Now()
}

// ---- go-control-plane's Callbacks ----

func (c callbacks) OnStreamOpen(ctx context.Context, id int64, _ string) error {
	c.open(ctx, streamKey{id: id})
	return nil
}

func (c callbacks) OnStreamClosed(id int64, _ *corev3.Node) { c.closed(streamKey{id: id}) }

func (c callbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	if c.s.authz != nil {
		names, err := c.s.allowedNames(req.GetNode(), req.GetTypeUrl(), req.GetResourceNames())
		if err != nil {
			return status.Error(codes.PermissionDenied, err.Error())
		}
		req.ResourceNames = names // only what the token may read is subscribed
	}
	c.request(streamKey{id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResourceNames(), true,
		req.GetResponseNonce(), req.GetVersionInfo(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	return nil
}

func (c callbacks) OnStreamResponse(_ context.Context, id int64, req *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	c.response(streamKey{id: id}, cmp.Or(resp.GetTypeUrl(), req.GetTypeUrl()), resp.GetNonce(), resp.GetVersionInfo())
}

func (c callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, _ string) error {
	c.open(ctx, streamKey{delta: true, id: id})
	return nil
}

func (c callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) {
	c.closed(streamKey{delta: true, id: id})
}

func (c callbacks) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	key := streamKey{delta: true, id: id}
	if c.s.authz != nil {
		names, err := c.s.allowedNames(req.GetNode(), req.GetTypeUrl(), req.GetResourceNamesSubscribe())
		if err != nil {
			return status.Error(codes.PermissionDenied, err.Error())
		}
		req.ResourceNamesSubscribe = names
	}
	if un := req.GetResourceNamesUnsubscribe(); len(un) > 0 {
		c.s.mu.Lock()
		if st := c.s.clients[key]; st != nil {
			if ts := st.types[req.GetTypeUrl()]; ts != nil {
				ts.Names = slices.DeleteFunc(ts.Names, func(n string) bool { return slices.Contains(un, n) })
			}
		}
		c.s.mu.Unlock()
	}
	// A delta ACK carries no version: record the version of the response
	// it acknowledges.
	c.request(key, req.GetNode(), req.GetTypeUrl(), req.GetResourceNamesSubscribe(), false,
		req.GetResponseNonce(), c.sentVersion(key, req.GetTypeUrl()), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	return nil
}

func (c callbacks) OnStreamDeltaResponse(id int64, req *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	c.response(streamKey{delta: true, id: id}, cmp.Or(resp.GetTypeUrl(), req.GetTypeUrl()), resp.GetNonce(), resp.GetSystemVersionInfo())
}

func (c callbacks) sentVersion(key streamKey, typeURL string) string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if st := c.s.clients[key]; st != nil {
		if ts := st.types[typeURL]; ts != nil {
			return ts.Sent
		}
	}
	return ""
}

// OnFetchRequest and OnFetchResponse: the REST endpoints are not served.
func (c callbacks) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error { return nil }
func (c callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {
}
