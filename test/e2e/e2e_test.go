// Package e2e drives the built binaries (bin/stored, bin/storectl) through
// scripts/cluster.sh: a three-server cluster on non-default ports with its
// data in a temporary directory. `make test` builds the binaries first;
// the test is skipped when they are missing.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env is one cluster.sh cluster.
type env struct {
	t        *testing.T
	root     string
	dir      string
	basePort int
	// extraEnv is added to every command's environment (e.g. SECURE=1).
	extraEnv []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"stored", "storectl"} {
		if _, err := os.Stat(filepath.Join(root, "bin", b)); err != nil {
			t.Skipf("bin/%s not built (run make build): %v", b, err)
		}
	}
	return &env{t: t, root: root, dir: t.TempDir(), basePort: freeBasePort(t)}
}

// freeBasePort finds a base port whose twelve cluster ports (TCP, and UDP
// for gossip; Raft, gossip, gRPC and HTTP per node) are free.
func freeBasePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 20000 + 10*rand.IntN(3000)
		if portsFree(base) {
			return base
		}
	}
	t.Fatal("no free port range found")
	return 0
}

func portsFree(base int) bool {
	for n := range 3 {
		for off := range 4 {
			addr := fmt.Sprintf("127.0.0.1:%d", base+10*n+off)
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return false
			}
			_ = l.Close()
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				return false
			}
			_ = u.Close()
		}
	}
	return true
}

func (e *env) httpAddr(n int) string { return fmt.Sprintf("127.0.0.1:%d", e.basePort+10*(n-1)+3) }

func (e *env) grpcAddr(n int) string { return fmt.Sprintf("127.0.0.1:%d", e.basePort+10*(n-1)+2) }

func (e *env) allAddrs() string {
	return strings.Join([]string{e.grpcAddr(1), e.grpcAddr(2), e.grpcAddr(3)}, ",")
}

// run executes a command with the cluster environment and returns its
// stdout, stderr and exit code.
func (e *env) run(timeout time.Duration, name string, args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(),
		"CLUSTER_DIR="+e.dir,
		fmt.Sprintf("BASE_PORT=%d", e.basePort),
		"UP_TIMEOUT=60",
		"STORE_ADDR="+e.allAddrs(),
	)
	cmd.Env = append(cmd.Env, e.extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if ctx.Err() != nil {
			e.t.Fatalf("%s %s: timed out after %s\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), timeout, &stdout, &stderr)
		}
	}
	return stdout.String(), stderr.String(), code
}

// cluster runs scripts/cluster.sh and fails the test unless it succeeds.
func (e *env) cluster(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(2*time.Minute, "scripts/cluster.sh", args...)
	if code != 0 {
		e.t.Fatalf("cluster.sh %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// ctl runs bin/storectl and returns stdout, stderr and the exit code.
func (e *env) ctl(args ...string) (string, string, int) {
	e.t.Helper()
	return e.run(time.Minute, "bin/storectl", args...)
}

// mustCtl runs bin/storectl and fails the test unless it exits 0.
func (e *env) mustCtl(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.ctl(args...)
	if code != 0 {
		e.t.Fatalf("storectl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// dumpLogs prints the node logs.
func (e *env) dumpLogs() {
	for n := 1; n <= 3; n++ {
		// A short tail, so that a CI log keeping only its end still shows
		// the failure.
		b, _ := os.ReadFile(filepath.Join(e.dir, fmt.Sprintf("n%d", n), "stored.log"))
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		e.t.Logf("=== n%d log, last lines ===\n%s", n, strings.Join(lines, "\n"))
	}
}

type status struct {
	Node     string `json:"node"`
	IsLeader bool   `json:"is_leader"`
	Leader   string `json:"leader"`
	Applied  uint64 `json:"applied_index"`
}

func (e *env) status(n int) status {
	e.t.Helper()
	out := e.mustCtl("--addr", e.grpcAddr(n), "status", "--json")
	var st status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("status --json output %q: %v", out, err)
	}
	return st
}

func TestClusterScript(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	e := newEnv(t)
	t.Cleanup(func() {
		if t.Failed() {
			e.dumpLogs()
		}
		e.run(2*time.Minute, "scripts/cluster.sh", "down")
	})

	start := time.Now()
	e.cluster("up")
	t.Logf("cluster.sh up: %s", time.Since(start).Round(time.Millisecond))

	examples, err := filepath.Glob(filepath.Join(e.root, "scripts", "examples", "*.hcl"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range examples {
		out := e.mustCtl("put", f)
		if !strings.HasPrefix(out, "Config entry written: ") {
			t.Errorf("put %s printed %q", filepath.Base(f), out)
		}
	}

	out := e.mustCtl("get", "service-router", "web")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("get output is not JSON: %v\n%s", err, out)
	}
	if got["Kind"] != "service-router" || got["Name"] != "web" || got["ModifyIndex"] == nil || got["CreateIndex"] == nil {
		t.Errorf("get service-router web = %v, want the entry with its indexes", got)
	}
	if out := e.mustCtl("list", "service-defaults"); out != "admin\nweb\n" {
		t.Errorf("list service-defaults = %q, want admin and web", out)
	}

	// A failed CAS and a graph error: exit 1 with the CLI's messages.
	if _, errOut, code := e.ctl("put", "--cas", "--modify-index", "1", filepath.Join(e.root, "scripts/examples/02-service-defaults-web.hcl")); code != 1 ||
		!strings.Contains(errOut, `Config entry "service-defaults" / "web" not updated`) {
		t.Errorf("stale CAS put: exit %d, stderr %q", code, errOut)
	}
	tcpWeb := filepath.Join(t.TempDir(), "web-tcp.hcl")
	if err := os.WriteFile(tcpWeb, []byte("kind = \"service-defaults\"\nname = \"web\"\nprotocol = \"tcp\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.ctl("put", tcpWeb); code != 1 ||
		!strings.Contains(errOut, `Error writing config entry "service-defaults" / "web": `) ||
		!strings.Contains(errOut, "does not permit advanced routing or splitting behavior") {
		t.Errorf("graph-invalid put (web is routed, so it must stay http): exit %d, stderr %q", code, errOut)
	}

	checkHTTP(t, e)

	out = e.mustCtl("peers")
	if strings.Count(out, "true") != 3 || strings.Count(out, "leader") != 1 {
		t.Errorf("peers output does not show 3 voters and one leader:\n%s", out)
	}

	// Kill the leader and write again through the same address list.
	leader := 0
	for n := 1; n <= 3; n++ {
		if e.status(n).IsLeader {
			leader = n
		}
	}
	if leader == 0 {
		t.Fatal("no node reports itself leader")
	}
	e.cluster("kill", fmt.Sprint(leader))
	entry := filepath.Join(t.TempDir(), "after-kill.hcl")
	if err := os.WriteFile(entry, []byte("kind = \"service-defaults\"\nname = \"after-kill\"\nprotocol = \"http\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	e.mustCtl("put", entry)
	t.Logf("leader n%d killed; next put succeeded after %s", leader, time.Since(start).Round(time.Millisecond))
	other := leader%3 + 1
	out = e.mustCtl("--addr", e.grpcAddr(other), "get", "--consistent", "service-defaults", "after-kill")
	if !strings.Contains(out, `"after-kill"`) {
		t.Errorf("get after-kill via n%d = %q", other, out)
	}

	// The killed node restarts from its data and catches up.
	start = time.Now()
	e.cluster("start", fmt.Sprint(leader))
	t.Logf("cluster.sh start n%d (rejoined, leader agreed, 3 voters): %s", leader, time.Since(start).Round(time.Millisecond))
	// Not found yet (exit 1) is fine here: replication may still be in
	// flight; the blocking read below waits for it.
	out, _, _ = e.ctl("--addr", e.grpcAddr(leader), "get", "--stale", "service-defaults", "after-kill")
	if !strings.Contains(out, `"after-kill"`) {
		// Replication to the restarted node may still be in flight: wait
		// for it with a blocking stale read.
		out = e.mustCtl("--addr", e.grpcAddr(leader), "get", "--stale", "--index", "1", "--wait", "10s", "service-defaults", "after-kill")
		if !strings.Contains(out, `"after-kill"`) {
			t.Errorf("restarted n%d does not hold after-kill: %q", leader, out)
		}
	}
	e.cluster("status")
	e.cluster("down")
}

// checkHTTP reads what storectl wrote through every node's HTTP API
// (--http-addr from cluster.sh), and writes through one of them.
func checkHTTP(t *testing.T, e *env) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	call := func(method, url, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for n := 1; n <= 3; n++ {
		base := "http://" + e.httpAddr(n)
		if code, body := call("GET", base+"/v1/config/service-router/web", ""); code != 200 || !strings.Contains(body, `"Kind":"service-router"`) {
			t.Errorf("n%d GET /v1/config/service-router/web = %d %s", n, code, body)
		}
		if code, body := call("GET", base+"/v1/status/leader", ""); code != 200 || len(body) < 10 {
			t.Errorf("n%d GET /v1/status/leader = %d %s", n, code, body)
		}
	}
	if code, body := call("PUT", "http://"+e.httpAddr(2)+"/v1/config", `{"Kind":"service-defaults","Name":"billing","Protocol":"http"}`); code != 200 || body != "true" {
		t.Errorf("PUT /v1/config on n2 = %d %s", code, body)
	}
	if code, body := call("GET", "http://"+e.httpAddr(3)+"/v1/config/service-defaults/billing", ""); code != 200 || !strings.Contains(body, `"Protocol":"http"`) {
		t.Errorf("GET the HTTP-written entry on n3 = %d %s", code, body)
	}
	if code, body := call("DELETE", "http://"+e.httpAddr(1)+"/v1/config/service-defaults/billing", ""); code != 200 {
		t.Errorf("DELETE /v1/config/service-defaults/billing = %d %s", code, body)
	}
}
