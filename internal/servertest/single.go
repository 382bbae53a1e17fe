package servertest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// Single is one running server that is a cluster of its own.
type Single struct {
	t      testing.TB
	srv    *server.Server
	client *api.Client
}

// singles numbers the single servers of the test binary, so that two of
// them in one test have distinct names (and log files).
var singles atomic.Int64

// StartSingle starts a server that bootstraps a cluster of one
// (BootstrapExpect 1, no join) with the short timeouts of Config, real
// Raft on bbolt in t.TempDir() and a loopback gRPC address, and waits (up
// to 20 s) until it is the leader and has finished its start-of-term
// barrier. mutate, if given, adjusts the config before the server is
// built (e.g. the Hub field). The server stops when the test ends.
func StartSingle(tb testing.TB, mutate ...func(*server.Config)) *Single {
	tb.Helper()
	name := fmt.Sprintf("s%d", singles.Add(1))
	logs := &syncBuffer{}
	cfg := Config(name, tb.TempDir())
	cfg.BootstrapExpect = 1
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := newServer(tb, &cfg, testLogger(name, logs), true)
	if err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	s := &Single{t: tb, srv: srv}
	tb.Cleanup(func() { _ = srv.Stop(false) })
	srv.Start()
	dumpLogsOnFailure(tb, name, logs)
	testutil.Poll(tb, 20*time.Second, name+" to lead its cluster of one", func() bool {
		if !srv.Raft().IsLeader() {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := srv.Raft().ReadIndex(ctx)
		return err == nil
	})
	s.client = NewClient(tb, srv.GRPCAddr())
	return s
}

// Addr returns the server's gRPC address.
func (s *Single) Addr() string { return s.srv.GRPCAddr() }

// HTTPAddr returns the server's HTTP API address.
func (s *Single) HTTPAddr() string { return s.srv.HTTPAddr() }

// Server returns the server.
func (s *Single) Server() *server.Server { return s.srv }

// Put writes an entry document (JSON or HCL) with a plain upsert through
// the API and returns the Raft index it was applied at. It fails the test
// if the entry is invalid or rejected.
func (s *Single) Put(doc string) uint64 {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := s.client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(doc)})
	if err != nil || !resp.GetApplied() {
		s.t.Fatalf("Apply(%s) = %v, %v", doc, resp, err)
	}
	return resp.GetIndex()
}

// Stop stops the server without leaving (clients see their connections
// drop). The test's cleanup would stop it anyway.
func (s *Single) Stop() { _ = s.srv.Stop(false) }

// Resolver returns a service-resolver document with a connect timeout.
func Resolver(name string, timeout time.Duration) string {
	return fmt.Sprintf(`{"Kind":"service-resolver","Name":%q,"ConnectTimeout":%q}`, name, timeout.String())
}
