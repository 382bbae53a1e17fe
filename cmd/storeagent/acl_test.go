package main

import (
	"context"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// TestAgentSendsToken: against a server with ACLs on (default deny), the
// agent's --token reaches the watch stream: it receives web's chain.
func TestAgentSendsToken(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t, func(c *server.Config) { c.ACLEnabled = true })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	boot, err := servertest.NewClient(t, srv.Addr()).ACL().Bootstrap(ctx, &chainstorev1.BootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := startAgent(t, "--addr", srv.Addr(), "--watch", "web", "--token", boot.GetToken().GetSecretId(),
		"--min-backoff", "5ms", "--max-backoff", "50ms")
	testutil.Poll(t, 10*time.Second, "web's chain", func() bool { return len(lines(t, stdout.String())) >= 1 })
	if l := lines(t, stdout.String())[0]; l.Service != "web" || l.Error != "" || len(l.Chain) == 0 {
		t.Fatalf("first line %+v; stderr:\n%s", l, stderr.String())
	}
}
