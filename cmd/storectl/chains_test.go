package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/server"
)

// TestChainMatchesCompile: `storectl chain` prints byte for byte what
// `storectl compile` prints for the same entries.
func TestChainMatchesCompile(t *testing.T) {
	t.Parallel()
	docs := map[string]string{
		"web-resolver.json": `{"Kind":"service-resolver","Name":"web","DefaultSubset":"v1","Subsets":{"v1":{"Filter":"Service.Meta.version == v1"},"v2":{"Filter":"Service.Meta.version == v2"}}}`,
		"web-defaults.json": `{"Kind":"service-defaults","Name":"web","Protocol":"http"}`,
		"web-splitter.json": `{"Kind":"service-splitter","Name":"web","Splits":[{"Weight":90,"ServiceSubset":"v1"},{"Weight":10,"ServiceSubset":"v2"}]}`,
	}
	srv := servertest.StartSingle(t)
	for _, name := range []string{"web-defaults.json", "web-resolver.json", "web-splitter.json"} {
		srv.Put(docs[name])
	}
	dir := writeEntryFiles(t, docs)

	tests := map[string][]string{
		"default datacenter": nil,
		"dc2":                {"--datacenter", "dc2"},
		"overrides":          {"--override-protocol", "tcp", "--override-connect-timeout", "3s"},
	}
	for name, extra := range tests {
		code, want, stderr := runStorectl(t, dir, append(append([]string{"compile", "--entries", dir}, extra...), "web")...)
		if code != 0 {
			t.Fatalf("%s: compile exited %d: %s", name, code, stderr)
		}
		code, got, stderr := runStorectl(t, dir, append(append([]string{"--addr", srv.Addr(), "chain"}, extra...), "web")...)
		if code != 0 {
			t.Fatalf("%s: chain exited %d: %s", name, code, stderr)
		}
		if got != want {
			t.Errorf("%s: storectl chain printed\n%s\nstorectl compile printed\n%s", name, got, want)
		}
	}
}

func TestChainCommandErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t, func(c *server.Config) { c.Hub.MaxChainBytes = 10 })
	srv.Put(servertest.Resolver("web", 5*time.Second))
	code, stdout, stderr := runStorectl(t, "", "--addr", srv.Addr(), "chain", "web")
	if code != 1 || stdout != "" || !strings.Contains(stderr, `Error compiling discovery chain "web": compiled chain "web" is`) {
		t.Errorf("chain that does not compile: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = runStorectl(t, "", "--addr", srv.Addr(), "chain")
	if code != 2 || !strings.Contains(stderr, "usage: storectl chain") {
		t.Errorf("chain without a service: exit %d, stderr %q", code, stderr)
	}
}

func TestWatchCommand(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t)
	idx := srv.Put(servertest.Resolver("web", 5*time.Second))
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, []string{"--addr", srv.Addr(), "watch", "--count", "2", "web", "api"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("watch exited %d: %s", code, stderr.String())
	}
	got := map[string]uint64{}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var v struct {
			Service string          `json:"service"`
			Index   uint64          `json:"index"`
			Hash    string          `json:"hash"`
			Chain   json.RawMessage `json:"chain"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.Hash == "" || len(v.Chain) == 0 {
			t.Fatalf("line %q: %v", l, err)
		}
		got[v.Service] = v.Index
	}
	if got["web"] != idx || len(got) != 2 {
		t.Errorf("watch printed %v, want web at %d and api", got, idx)
	}
}
