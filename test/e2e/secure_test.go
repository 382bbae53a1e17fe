package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/testutil"
	"github.com/chainstore/chainstore/tlsutil"
)

// TestSecureClusterScript: `SECURE=1 scripts/cluster.sh up` creates the
// PKI and gossip key, starts three servers that refuse clients without a
// client certificate, serves clients with one, and a server reloads its
// certificate on SIGHUP. A server bound to a non-loopback address without
// TLS refuses to start, in one line.
func TestSecureClusterScript(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server cluster")
	}
	e := newEnv(t)
	e.extraEnv = []string{"SECURE=1"}
	t.Cleanup(func() {
		if t.Failed() {
			e.dumpLogs()
		}
		e.run(2*time.Minute, "scripts/cluster.sh", "down")
	})
	e.cluster("up")
	tlsDir := filepath.Join(e.dir, "tls")
	for _, f := range []string{"ca.pem", "client.pem", "client-key.pem", "gossip.key", "server-n1.pem", "server-n1-key.pem"} {
		st, err := os.Stat(filepath.Join(tlsDir, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if (strings.HasSuffix(f, "-key.pem") || f == "gossip.key") && st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if _, stderr, code := e.ctl("--addr", e.grpcAddr(1), "--timeout", "3s", "status"); code == 0 {
		t.Fatalf("storectl without TLS: exit 0, want refused (stderr %q)", stderr)
	}
	certOnly := []string{"--ca-file", filepath.Join(tlsDir, "ca.pem"), "--cert-file", filepath.Join(tlsDir, "client.pem"), "--key-file", filepath.Join(tlsDir, "client-key.pem")}
	if _, stderr, code := e.ctl("--addr", e.grpcAddr(1), "--ca-file", filepath.Join(tlsDir, "ca.pem"), "--timeout", "3s", "status"); code == 0 {
		t.Fatalf("storectl without a client certificate: exit 0, want refused (stderr %q)", stderr)
	}

	// Secure mode includes ACLs: the script bootstrapped them and kept the
	// management token; a client with a certificate but no token may not
	// write.
	tokFile := filepath.Join(e.dir, "bootstrap-token")
	st, err := os.Stat(tokFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap-token: %v (mode %v), want a 0600 file", err, st)
	}
	tok, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.ctl(append(certOnly, "--addr", e.allAddrs(), "put", "scripts/examples/01-proxy-defaults.hcl")...); code == 0 || !strings.Contains(stderr, "Permission denied") {
		t.Fatalf("put with a certificate but no token: exit %d, stderr %q; want Permission denied", code, stderr)
	}
	withTLS := append(certOnly, "--token", strings.TrimSpace(string(tok)))

	// The HTTP API is HTTPS with the same certificates.
	httpAddr := fmt.Sprintf("127.0.0.1:%d", e.basePort+3)
	hc, err := tlsutil.ClientConfig(filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "client.pem"), filepath.Join(tlsDir, "client-key.pem"), "")
	if err != nil {
		t.Fatal(err)
	}
	hconn, err := tls.Dial("tcp", httpAddr, hc)
	if err != nil {
		t.Fatalf("TLS handshake with the HTTP port %s: %v", httpAddr, err)
	}
	_ = hconn.Close()
	e.mustCtl(append(withTLS, "--addr", e.allAddrs(), "put", "scripts/examples/01-proxy-defaults.hcl")...)
	if out := e.mustCtl(append(withTLS, "--addr", e.grpcAddr(2), "get", "proxy-defaults", "global")...); !strings.Contains(out, "global") {
		t.Fatalf("get through n2: %q", out)
	}

	// SIGHUP: n1 serves a new certificate without a restart.
	served := func() []byte {
		t.Helper()
		cfg, err := tlsutil.ClientConfig(filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "client.pem"), filepath.Join(tlsDir, "client-key.pem"), "")
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", e.grpcAddr(1), cfg)
		if err != nil {
			t.Fatalf("dial n1: %v", err)
		}
		defer func() { _ = conn.Close() }()
		return conn.ConnectionState().PeerCertificates[0].Raw
	}
	before := served()
	e.mustCtl("tls", "cert", "create", "--server", "--node", "n1", "--dir", tlsDir, "--name", "server-n1-new",
		"--ca", filepath.Join(tlsDir, "ca.pem"), "--ca-key", filepath.Join(tlsDir, "ca-key.pem"))
	for _, p := range [][2]string{{"server-n1-new.pem", "server-n1.pem"}, {"server-n1-new-key.pem", "server-n1-key.pem"}} {
		if err := os.Rename(filepath.Join(tlsDir, p[0]), filepath.Join(tlsDir, p[1])); err != nil {
			t.Fatal(err)
		}
	}
	newPEM, err := os.ReadFile(filepath.Join(tlsDir, "server-n1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(newPEM)
	if blk == nil || bytes.Equal(blk.Bytes, before) {
		t.Fatal("the new certificate is not new")
	}
	pid := e.pid(1)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP n1: %v", err)
	}
	testutil.Poll(t, 20*time.Second, "n1 serves the new certificate", func() bool { return bytes.Equal(served(), blk.Bytes) })
	e.mustCtl(append(withTLS, "--addr", e.grpcAddr(1), "put", "scripts/examples/01-proxy-defaults.hcl")...)

	// Unprotected on a non-loopback address: refused in one line.
	_, stderr, code := e.run(30*time.Second, "bin/stored", "--node", "x", "--data-dir", t.TempDir(),
		"--raft-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--grpc-addr", "0.0.0.0:0")
	if code == 0 || !strings.Contains(stderr, "--insecure") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("stored on 0.0.0.0 without TLS: exit %d, stderr %q; want one line naming --insecure", code, stderr)
	}
}

// pid returns the process ID of node n from its pid file.
func (e *env) pid(n int) int {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, fmt.Sprintf("n%d", n), "stored.pid"))
	if err != nil {
		e.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		e.t.Fatalf("pid file of n%d: %v", n, err)
	}
	return pid
}
