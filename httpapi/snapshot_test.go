package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	capi "github.com/hashicorp/consul/api"

	"github.com/chainstore/chainstore/httpapi"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/snapshot"
)

// protocolOn returns the protocol of service-defaults/name as nd's HTTP
// API reads it with ?stale ("" when absent).
func protocolOn(t *testing.T, c *capi.Client, name string) string {
	t.Helper()
	e, _, err := c.ConfigEntries().Get(capi.ServiceDefaults, name, &capi.QueryOptions{AllowStale: true})
	if err != nil {
		return ""
	}
	return e.(*capi.ServiceConfigEntry).Protocol
}

// TestHTTPSnapshotRoundTrip: in a 3-node cluster with ACLs, bootstrapped
// through a follower, client.Snapshot().Save() through a follower, more writes, then Restore() through the other
// follower: every server holds the saved state again. A corrupt file and
// a file that is no snapshot are refused with 400 and nothing changes.
func TestHTTPSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	c := servertest.NewCluster(t, 3, withACLs)
	fs := c.Followers()
	viaF0, viaF1 := consulClient(t, fs[0].HTTPAddr()), consulClient(t, fs[1].HTTPAddr())

	// With ACLs on: bootstrap through a follower (forwarded to the
	// leader), and a backup needs operator:write there too.
	boot, _, err := viaF0.ACL().Bootstrap()
	if err != nil {
		t.Fatalf("Bootstrap() through a follower: %v", err)
	}
	if _, _, err := viaF1.Snapshot().Save(nil); statusCode(err) != http.StatusForbidden || !strings.Contains(err.Error(), "Permission denied: token lacks permission 'operator:write'") {
		t.Fatalf("Snapshot().Save() without a token = %v; want 403 operator:write", err)
	}
	if err := viaF1.Snapshot().Restore(nil, strings.NewReader("x")); statusCode(err) != http.StatusForbidden {
		t.Fatalf("Snapshot().Restore() without a token = %v; want 403", err)
	}
	for _, cl := range []*capi.Client{viaF0, viaF1} {
		cl.AddHeader("X-Consul-Token", boot.SecretID)
	}

	if _, _, err := viaF0.ConfigEntries().Set(&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "web", Protocol: "http"}, nil); err != nil {
		t.Fatalf("Set(web): %v", err)
	}
	rc, meta, err := viaF0.Snapshot().Save(nil)
	if err != nil {
		t.Fatalf("Snapshot().Save(): %v", err)
	}
	file, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		t.Fatalf("read the snapshot: %v", err)
	}
	h, _, err := snapshot.Read(bytes.NewReader(file), snapshot.DefaultMaxSize)
	if err != nil {
		t.Fatalf("saved file: %v", err)
	}
	if meta.LastIndex != h.Index || h.Datacenter != "dc1" {
		t.Fatalf("X-Consul-Index %d, header %+v; want the snapshot's index", meta.LastIndex, h)
	}
	// ?stale serves the follower's own state.
	rc, _, err = viaF1.Snapshot().Save(&capi.QueryOptions{AllowStale: true})
	if err != nil {
		t.Fatalf("Snapshot().Save(stale): %v", err)
	}
	if b, _ := io.ReadAll(rc); len(b) == 0 {
		t.Fatal("stale save returned an empty file")
	}
	_ = rc.Close()

	// Changes after the save.
	if _, _, err := viaF0.ConfigEntries().Set(&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "web", Protocol: "grpc"}, nil); err != nil {
		t.Fatalf("Set(web grpc): %v", err)
	}
	if _, _, err := viaF0.ConfigEntries().Set(&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "late", Protocol: "http"}, nil); err != nil {
		t.Fatalf("Set(late): %v", err)
	}

	// Bad files are refused, naming the problem; nothing changes.
	corrupt := bytes.Clone(file)
	corrupt[len(corrupt)-10] ^= 0xff
	for name, bad := range map[string][]byte{"corrupt": corrupt, "not a snapshot": []byte("hello"), "truncated": file[:len(file)/2]} {
		err := viaF1.Snapshot().Restore(nil, bytes.NewReader(bad))
		if statusCode(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "snapshot refused") {
			t.Fatalf("Restore(%s) = %v; want 400 snapshot refused", name, err)
		}
	}
	if e, _, err := viaF1.ConfigEntries().Get(capi.ServiceDefaults, "late", nil); err != nil || e.(*capi.ServiceConfigEntry).Protocol != "http" {
		t.Fatalf("after refused restores late = %v, %v; want it untouched", e, err)
	}

	if err := viaF1.Snapshot().Restore(nil, bytes.NewReader(file)); err != nil {
		t.Fatalf("Snapshot().Restore(): %v", err)
	}
	for _, nd := range c.Running() {
		cl := consulClient(t, nd.HTTPAddr())
		cl.AddHeader("X-Consul-Token", boot.SecretID)
		testutil.Poll(t, 20*time.Second, nd.Name()+" to restore", func() bool {
			return protocolOn(t, cl, "web") == "http" && protocolOn(t, cl, "late") == ""
		})
	}
}

// snapFake answers the snapshot calls; the rest of the backend panics.
type snapFake struct {
	httpapi.Backend
	read int
}

func (f *snapFake) SnapshotRestore(_ context.Context, body io.Reader) (*chainstorev1.SnapshotRestoreResponse, error) {
	b, err := io.ReadAll(body)
	f.read = len(b)
	return &chainstorev1.SnapshotRestoreResponse{}, err
}

// TestSnapshotRestoreBodyLimit: a restore body over MaxSnapshotSize is a
// 413 naming the limit; one at the limit is restored.
func TestSnapshotRestoreBodyLimit(t *testing.T) {
	t.Parallel()
	cfg := httpapi.DefaultConfig()
	cfg.MaxSnapshotSize = 1000
	f := &snapFake{}
	s, err := httpapi.New(cfg, f, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		size, code int
	}{{1000, 200}, {1001, 413}} {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPut, "/v1/snapshot", bytes.NewReader(make([]byte, tc.size)))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Fatalf("restore of %d bytes = %d %q, want %d", tc.size, rec.Code, rec.Body.String(), tc.code)
		}
		if tc.code == 413 && !strings.Contains(rec.Body.String(), "at most "+strconv.Itoa(1000)+" bytes") {
			t.Fatalf("413 body %q does not name the limit", rec.Body.String())
		}
	}
}
