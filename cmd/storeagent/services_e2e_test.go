package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// agentServices is the --services file of TestAgentRegistersInstances:
// two TTL checks shorter than the test, and an instance without a check.
const agentServices = `
services {
  id      = "web-1"
  service = "web"
  address = "127.0.0.1"
  port    = 8080
  meta    = { version = "v1" }
  tags    = ["a"]
  ttl     = "1500ms"
}
services {
  id      = "web-2"
  service = "web"
  address = "127.0.0.2"
  port    = 8080
}
services {
  id      = "api-1"
  service = "api"
  address = "127.0.0.1"
  port    = 9090
  ttl     = "1s"
}
`

// TestAgentRegistersInstances runs the agent with --services against a
// real server, alone and with --watch: the instances appear passing, stay
// passing for several TTLs, and are gone once the agent has stopped.
func TestAgentRegistersInstances(t *testing.T) {
	t.Parallel()
	for name, extra := range map[string][]string{
		"catalog only": nil,
		"with watch":   {"--watch", "web"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := servertest.StartSingle(t)
			srv.Put(servertest.Resolver("web", 5*time.Second))
			file := filepath.Join(t.TempDir(), "services.hcl")
			if err := os.WriteFile(file, []byte(agentServices), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := api.DefaultClientConfig()
			cfg.Addrs = []string{srv.Addr()}
			client, err := api.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = client.Close() })
			// instances returns the IDs of the service's instances (passing
			// ones only with passingOnly), or nil when the call fails.
			instances := func(service string, passingOnly bool) []string {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				resp, err := client.Instances(ctx, &chainstorev1.InstancesRequest{Service: service, PassingOnly: passingOnly})
				if err != nil {
					t.Logf("Instances(%s): %v", service, err)
					return nil
				}
				var ids []string
				for _, ih := range resp.GetInstances() {
					ids = append(ids, ih.GetInstance().GetId())
				}
				return ids
			}
			allPassing := func() bool {
				return slices.Equal(instances("web", true), []string{"web-1", "web-2"}) && slices.Equal(instances("api", true), []string{"api-1"})
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stdout, stderr := &syncBuffer{}, &syncBuffer{}
			done := make(chan int, 1)
			args := append([]string{"--addr", srv.Addr(), "--services", file, "--min-backoff", "5ms", "--max-backoff", "50ms"}, extra...)
			go func() { done <- run(ctx, args, stdout, stderr) }()

			testutil.Poll(t, 10*time.Second, "every instance registered and passing", allPassing)
			if extra != nil {
				testutil.Poll(t, 10*time.Second, "the web chain's line", func() bool { return len(lines(t, stdout.String())) >= 1 })
			} else if stdout.String() != "" {
				t.Errorf("stdout without --watch: %q", stdout.String())
			}
			// Several TTLs later they are still passing: the agent keeps
			// updating the checks (the server marks an expired one critical).
			// Sampled every 100 ms for 3 s: the sampling is the test.
			sample := time.NewTicker(100 * time.Millisecond)
			defer sample.Stop()
			for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); <-sample.C {
				if !allPassing() {
					t.Fatalf("an instance stopped passing: web %q, api %q; agent log:\n%s",
						instances("web", true), instances("api", true), stderr.String())
				}
			}

			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("agent exited with %d; stderr:\n%s", code, stderr.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("agent did not stop; stderr:\n%s", stderr.String())
			}
			if web, api := instances("web", false), instances("api", false); len(web)+len(api) != 0 {
				t.Errorf("after the agent stopped: web %q, api %q still registered; agent log:\n%s", web, api, stderr.String())
			}
		})
	}
}

// TestAgentKeepsInstancesThroughLeaderCrash: the leader the agent talks to
// crashes; the agent carries on with the other servers: its instance is
// passing under the new leader and stays so, and it is deregistered when
// the agent stops.
func TestAgentKeepsInstancesThroughLeaderCrash(t *testing.T) {
	t.Parallel()
	c := servertest.NewCluster(t, 3, nil)
	leader := c.Leader()
	addrs := []string{leader.GRPCAddr()}
	for _, nd := range c.Followers() {
		addrs = append(addrs, nd.GRPCAddr())
	}
	file := filepath.Join(t.TempDir(), "services.json")
	doc := `{"services":[{"id":"web-1","service":"web","address":"127.0.0.1","port":8080,"ttl":"2s"}]}`
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", strings.Join(addrs, ","), "--services", file, "--min-backoff", "10ms", "--max-backoff", "200ms"}, stdout, stderr)
	}()

	// status reads web-1's health from the given nodes ("" when absent or
	// the read fails).
	status := func(client *api.Client) string {
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer rcancel()
		resp, err := client.Instances(rctx, &chainstorev1.InstancesRequest{Service: "web"})
		if err != nil || len(resp.GetInstances()) != 1 {
			return ""
		}
		return resp.GetInstances()[0].GetStatus().String()
	}
	const passing = "HEALTH_STATUS_PASSING"
	all := c.Client(c.Running()...)
	testutil.Poll(t, 10*time.Second, "web-1 passing", func() bool { return status(all) == passing })

	c.Crash(leader)
	survivors := c.Client(c.Running()...)
	c.Leader()
	testutil.Poll(t, 20*time.Second, "web-1 passing under the new leader", func() bool { return status(survivors) == passing })
	// Sampled every 100 ms for more than two TTLs: the sampling is the test.
	sample := time.NewTicker(100 * time.Millisecond)
	defer sample.Stop()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); <-sample.C {
		if st := status(survivors); st != passing && st != "" {
			t.Fatalf("web-1 is %s after the failover; agent log:\n%s", st, stderr.String())
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("agent exited with %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("agent did not stop; stderr:\n%s", stderr.String())
	}
	testutil.Poll(t, 10*time.Second, "web-1 deregistered", func() bool {
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer rcancel()
		resp, err := survivors.Instances(rctx, &chainstorev1.InstancesRequest{Service: "web"})
		return err == nil && len(resp.GetInstances()) == 0
	})
}
