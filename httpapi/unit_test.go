package httpapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/chainstore/chainstore/httpapi"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/raftnode"
)

// fakeBackend answers Peers and Get; any other call panics through the
// nil embedded interface (the server must recover).
type fakeBackend struct {
	httpapi.Backend

	mu       sync.Mutex
	lastMD   metadata.MD
	lastOpts *chainstorev1.QueryOptions
}

func (f *fakeBackend) Peers(ctx context.Context, _ *chainstorev1.PeersRequest) (*chainstorev1.PeersResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.lastMD = md
	f.mu.Unlock()
	return &chainstorev1.PeersResponse{Peers: []*chainstorev1.Peer{{Address: "10.0.0.1:8300"}, {Address: "10.0.0.2:8300", Leader: true}}}, nil
}

func (f *fakeBackend) Get(_ context.Context, req *chainstorev1.GetRequest) (*chainstorev1.GetResponse, error) {
	f.mu.Lock()
	f.lastOpts = req.GetOptions()
	f.mu.Unlock()
	return &chainstorev1.GetResponse{Found: true, Entry: []byte(`{"Kind":"service-defaults","Name":"web"}`), CreateIndex: 3, ModifyIndex: 7,
		Meta: &chainstorev1.QueryMeta{Index: 7, KnownLeader: true}}, nil
}

type fakeRaft struct {
	mu sync.Mutex
	st raftnode.Stats
}

func (f *fakeRaft) Stats() raftnode.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeRaft) set(st raftnode.Stats) {
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
}

func newFake(t *testing.T, raft httpapi.RaftStats) (*fakeBackend, *httpapi.Server) {
	t.Helper()
	b := &fakeBackend{}
	s, err := httpapi.New(httpapi.DefaultConfig(), b, raft, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b, s
}

func get(t *testing.T, h http.Handler, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	raft := &fakeRaft{}
	_, s := newFake(t, raft)
	steps := []struct {
		st       raftnode.Stats
		code     int
		contains string
	}{
		{raftnode.Stats{}, 503, "no leader known"},
		{raftnode.Stats{LeaderID: "l", CommitIndex: 10, AppliedIndex: 4}, 503, "applied index 4 is behind the leader's commit index 10"},
		{raftnode.Stats{LeaderID: "l", CommitIndex: 12, AppliedIndex: 9}, 503, "commit index 10"}, // the target stays the first one seen
		{raftnode.Stats{LeaderID: "l", CommitIndex: 25, AppliedIndex: 10}, 200, `"Status":"ready"`},
		{raftnode.Stats{LeaderID: "", CommitIndex: 25, AppliedIndex: 25}, 503, "no leader known"},
	}
	for i, st := range steps {
		raft.set(st.st)
		rec := get(t, s, "/v1/agent/health/ready", nil)
		if rec.Code != st.code || !strings.Contains(rec.Body.String(), st.contains) {
			t.Fatalf("step %d: ready = %d %q, want %d containing %q", i, rec.Code, rec.Body.String(), st.code, st.contains)
		}
	}
	if rec := get(t, s, "/v1/agent/health/live", nil); rec.Code != 200 {
		t.Fatalf("live = %d", rec.Code)
	}
}

func TestTokenAndQueryOptionsReachTheBackend(t *testing.T) {
	t.Parallel()
	b, s := newFake(t, nil)
	for _, tc := range []struct {
		target string
		header http.Header
		want   string
	}{
		{"/v1/status/peers?token=q", http.Header{"X-Consul-Token": {"h"}}, "q"},
		{"/v1/status/peers", http.Header{"X-Consul-Token": {"h"}, "Authorization": {"Bearer b"}}, "h"},
		{"/v1/status/peers", http.Header{"Authorization": {"Bearer b"}}, "b"},
		{"/v1/status/peers", nil, ""},
	} {
		rec := get(t, s, tc.target, tc.header)
		if rec.Code != 200 || rec.Body.String() != `["10.0.0.1:8300","10.0.0.2:8300"]` {
			t.Fatalf("peers = %d %s", rec.Code, rec.Body)
		}
		b.mu.Lock()
		got := b.lastMD.Get("x-chainstore-token")
		b.mu.Unlock()
		if (tc.want == "" && len(got) != 0) || (tc.want != "" && (len(got) != 1 || got[0] != tc.want)) {
			t.Fatalf("%s %v: token metadata = %v, want %q", tc.target, tc.header, got, tc.want)
		}
	}
	if rec := get(t, s, "/v1/status/leader", nil); rec.Body.String() != `"10.0.0.2:8300"` {
		t.Fatalf("leader = %s", rec.Body)
	}

	rec := get(t, s, "/v1/config/service-defaults/web?index=5&wait=10000ms&stale=", nil)
	if rec.Code != 200 || rec.Body.String() != `{"Kind":"service-defaults","Name":"web","CreateIndex":3,"ModifyIndex":7}` {
		t.Fatalf("get = %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("X-Consul-Index") != "7" || rec.Header().Get("X-Consul-KnownLeader") != "true" || rec.Header().Get("X-Consul-LastContact") != "0" {
		t.Fatalf("headers = %v", rec.Header())
	}
	b.mu.Lock()
	opts := b.lastOpts
	b.mu.Unlock()
	if opts.GetMinIndex() != 5 || opts.GetWait().AsDuration() != 10*time.Second || opts.GetConsistency() != chainstorev1.Consistency_CONSISTENCY_STALE {
		t.Fatalf("query options = %v", opts)
	}
	get(t, s, "/v1/config/service-defaults/web?consistent&wait=3", nil)
	b.mu.Lock()
	opts = b.lastOpts
	b.mu.Unlock()
	if opts.GetWait().AsDuration() != 3*time.Second || opts.GetConsistency() != chainstorev1.Consistency_CONSISTENCY_CONSISTENT {
		t.Fatalf("query options = %v", opts)
	}
}

func TestPanicInAHandlerIs500(t *testing.T) {
	t.Parallel()
	_, s := newFake(t, nil)
	// The fake does not implement Services: the call panics.
	rec := get(t, s, "/v1/catalog/services", nil)
	if rec.Code != http.StatusInternalServerError || rec.Body.String() != "internal error" {
		t.Fatalf("panicking handler = %d %q, want 500 internal error", rec.Code, rec.Body)
	}
}

func TestMount(t *testing.T) {
	t.Parallel()
	_, s := newFake(t, nil)
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ui:"+r.URL.Path) })
	if rec := get(t, s, "/", nil); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "no web UI is mounted") {
		t.Fatalf("/ without a UI = %d %q", rec.Code, rec.Body)
	}
	if err := s.Mount("/ui/", ui); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, s, "/", nil); rec.Code != http.StatusFound || rec.Header().Get("Location") != "/ui/" {
		t.Fatalf("/ with a UI = %d %v", rec.Code, rec.Header())
	}
	if err := s.Mount("/ui/", ui); err == nil {
		t.Fatal("mounting /ui/ twice succeeded")
	}
	if err := s.Mount("/", ui); err == nil {
		t.Fatal("mounting / (the API's catch-all) succeeded")
	}
	if err := s.Mount("/v1/x", ui); err == nil {
		t.Fatal("mounting under /v1/ succeeded")
	}
	if rec := get(t, s, "/ui/chain/web", nil); rec.Body.String() != "ui:/ui/chain/web" {
		t.Fatalf("/ui/chain/web = %d %q", rec.Code, rec.Body)
	}
	if rec := get(t, s, "/ui", nil); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/ui/" {
		t.Fatalf("/ui = %d %v", rec.Code, rec.Header())
	}
}

// TestHTTPSAndHeaderLimit serves over TLS with a self-signed certificate
// and checks that oversized headers are refused.
func TestHTTPSAndHeaderLimit(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	cfg := httpapi.DefaultConfig()
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s, err := httpapi.New(cfg, &fakeBackend{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	send := func(header http.Header) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+lis.Addr().String()+"/v1/status/leader", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET over TLS: %v", err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := send(http.Header{}); code != http.StatusOK {
		t.Fatalf("GET /v1/status/leader over TLS = %d", code)
	}
	if code := send(http.Header{"X-Big": {strings.Repeat("a", cfg.MaxHeaderBytes+8192)}}); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized header = %d, want 431", code)
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chainstore-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
