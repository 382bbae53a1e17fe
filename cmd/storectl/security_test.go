package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/tlstest"
	"github.com/chainstore/chainstore/server"
	"github.com/chainstore/chainstore/tlsutil"
)

// TestTLSCommands creates a CA, a server and a client certificate with
// storectl tls, checks their names and file modes, and runs a server and
// storectl with them.
func TestTLSCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctl := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := runStorectl(t, dir, args...)
		if code != 0 {
			t.Fatalf("storectl %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
		return stdout
	}
	ctl("tls", "ca", "create", "--dir", dir)
	ca, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	ctl("tls", "cert", "create", "--server", "--node", "n1", "--dir", dir, "--ca", ca, "--ca-key", caKey)
	ctl("tls", "cert", "create", "--client", "--dir", dir, "--ca", ca, "--ca-key", caKey)
	for _, f := range []string{"ca-key.pem", "server-n1-key.pem", "client-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	srvCert := readCert(t, filepath.Join(dir, "server-n1.pem"))
	for _, n := range []string{"server.dc1.chainstore", "n1.server.dc1.chainstore"} {
		if !slices.Contains(srvCert.DNSNames, n) {
			t.Errorf("server certificate names %v, want %s among them", srvCert.DNSNames, n)
		}
	}
	if cl := readCert(t, filepath.Join(dir, "client.pem")); !slices.Equal(cl.DNSNames, []string{"client.dc1.chainstore"}) {
		t.Errorf("client certificate names %v, want [client.dc1.chainstore]", cl.DNSNames)
	}
	// Refused: overwriting, both kinds, no kind.
	for _, args := range [][]string{
		{"tls", "cert", "create", "--client", "--dir", dir, "--ca", ca, "--ca-key", caKey},
		{"tls", "cert", "create", "--client", "--server", "--dir", dir},
		{"tls", "cert", "create", "--dir", dir},
		{"tls", "ca", "create", "--dir", dir},
	} {
		if code, _, _ := runStorectl(t, dir, args...); code == 0 {
			t.Errorf("storectl %s: exit 0, want an error", strings.Join(args, " "))
		}
	}

	c := servertest.NewCluster(t, 1, func(cfg *server.Config) {
		tc := tlsutil.DefaultConfig()
		tc.CAFile, tc.CertFile, tc.KeyFile = ca, filepath.Join(dir, "server-n1.pem"), filepath.Join(dir, "server-n1-key.pem")
		cfg.TLS = &tc
	})
	addr := c.Node("n1").GRPCAddr()
	tlsArgs := []string{"--addr", addr, "--ca-file", ca, "--cert-file", filepath.Join(dir, "client.pem"), "--key-file", filepath.Join(dir, "client-key.pem"), "--timeout", "5s"}
	if out := ctl(append(tlsArgs, "status")...); !strings.Contains(out, "Leader") {
		t.Errorf("storectl status over TLS printed %q", out)
	}
	if code, _, stderr := runStorectl(t, dir, "--addr", addr, "--ca-file", ca, "--timeout", "5s", "status"); code == 0 {
		t.Errorf("storectl status without a client certificate: exit 0, want refused (stderr %q)", stderr)
	}
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestKeyringCommands rotates the gossip key of a secure three-server
// cluster with storectl keyring (install, use, remove), then restarts a
// server with its original --encrypt key: it comes back with the rotated
// keyring from its data dir and rejoins.
func TestKeyringCommands(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t, "dc1")
	c := servertest.NewCluster(t, 3, servertest.Secure(pki, nil))
	client := pki.Client()
	base := []string{"--addr", c.Node("n1").GRPCAddr(), "--ca-file", pki.CAFile, "--cert-file", client.Cert, "--key-file", client.Key}
	ctl := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := runStorectl(t, "", append(append([]string{}, base...), args...)...)
		if code != 0 {
			t.Fatalf("storectl %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout
	}
	type node struct {
		Node string
		Keys []string
	}
	list := func() []node {
		t.Helper()
		var nodes []node
		if err := json.Unmarshal([]byte(ctl("keyring", "list", "--json")), &nodes); err != nil {
			t.Fatal(err)
		}
		return nodes
	}
	newKey := strings.TrimSpace(ctl("keyring", "generate"))
	ctl("keyring", "install", newKey)
	ctl("keyring", "use", newKey)
	ctl("keyring", "remove", servertest.TestGossipKey)
	nodes := list()
	if len(nodes) != 3 {
		t.Fatalf("keyring list: %d servers, want 3: %+v", len(nodes), nodes)
	}
	for _, n := range nodes {
		if !slices.Equal(n.Keys, []string{newKey}) {
			t.Errorf("%s keys = %v, want only the new key", n.Node, n.Keys)
		}
	}
	if code, _, stderr := runStorectl(t, "", append(append([]string{}, base...), "keyring", "use", "bm90LWEta2V5")...); code == 0 || !strings.Contains(stderr, "gossip key") {
		t.Errorf("keyring use of an invalid key: exit %d, stderr %q; want an error naming the key", code, stderr)
	}

	n3 := c.Node("n3")
	c.Stop(n3)
	c.Start(n3) // still started with --encrypt TestGossipKey
	c.WaitStable(3)
	for _, n := range list() {
		if !slices.Equal(n.Keys, []string{newKey}) {
			t.Errorf("after restart, %s keys = %v, want only the new key", n.Node, n.Keys)
		}
	}
}
