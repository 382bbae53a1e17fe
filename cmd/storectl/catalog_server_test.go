package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// TestCatalogCommandsAgainstServer runs the catalog commands against a
// real server: a round trip through every command.
func TestCatalogCommandsAgainstServer(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t)
	ctl := func(args ...string) (int, string, string) {
		t.Helper()
		return runStorectl(t, "", append([]string{"--addr", srv.Addr(), "catalog"}, args...)...)
	}
	mustCtl := func(want string, args ...string) string {
		t.Helper()
		code, stdout, stderr := ctl(args...)
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("storectl catalog %s: exit %d, stdout %q, stderr %q; want %q", strings.Join(args, " "), code, stdout, stderr, want)
		}
		return stdout
	}
	type row struct {
		ID, Status, Output string
		Meta               map[string]string
		Tags               []string
		TTL                string
	}
	list := func(args ...string) []row {
		t.Helper()
		var rows []row
		if err := json.Unmarshal([]byte(mustCtl("[", append([]string{"instances", "--json"}, args...)...)), &rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}

	mustCtl(`Instance "web-1" of service "web" registered`, "register", "--service", "web", "--id", "web-1", "--address", "10.0.0.1", "--port", "8080",
		"--meta", "version=v1", "--tag", "b", "--tag", "a", "--ttl", "1m")
	mustCtl(`Instance "web-2" of service "web" registered`, "register", "--service", "web", "--id", "web-2", "--address", "10.0.0.2", "--port", "8080")
	rows := list("web")
	if len(rows) != 2 || rows[0].ID != "web-1" || rows[0].Status != "critical" || rows[0].TTL != "1m0s" || rows[0].Meta["version"] != "v1" ||
		fmt.Sprint(rows[0].Tags) != "[a b]" || rows[1].Status != "passing" {
		t.Errorf("instances after registering: %+v", rows)
	}
	if rows := list("web", "--passing"); len(rows) != 1 || rows[0].ID != "web-2" {
		t.Errorf("passing instances before the check update: %+v", rows)
	}
	mustCtl(`Check of instance "web-1" set to warning`, "check", "web-1", "warn", "--note", "slow")
	if rows := list("web"); rows[0].Status != "warning" || rows[0].Output != "slow" {
		t.Errorf("after check warn: %+v", rows[0])
	}
	mustCtl(`Check of instance "web-1" set to passing`, "check", "web-1", "pass")
	table := mustCtl("web-1", "instances", "web")
	if !strings.Contains(table, "web-1  10.0.0.1:8080  passing") {
		t.Errorf("instances table:\n%s", table)
	}
	if out := mustCtl("web", "services"); !strings.Contains(out, "web      2          2") {
		t.Errorf("services:\n%s", out)
	}
	if code, _, stderr := ctl("check", "web-9", "pass"); code != 1 || !strings.HasPrefix(stderr, `Error updating the check of instance "web-9": `) {
		t.Errorf("check of an unknown instance: exit %d, stderr %q", code, stderr)
	}

	// A blocking query returns once the instances change.
	resp, err := newTestClient(t, srv.Addr()).Instances(context.Background(), &chainstorev1.InstancesRequest{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	blocked := make(chan string, 1)
	go func() {
		_, stdout, stderr := ctl("instances", "web", "--index", fmt.Sprint(resp.GetMeta().GetIndex()), "--wait", "10s")
		blocked <- stdout + stderr
	}()
	testutil.Poll(t, 10*time.Second, "the instances query to block", func() bool { return srv.Server().BlockedQueries() > 0 })
	mustCtl(`Instance "web-2" deregistered`, "deregister", "web-2")
	select {
	case out := <-blocked:
		if strings.Contains(out, "web-2") {
			t.Errorf("blocking instances returned %q, want web-2 gone", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking instances did not return after the change")
	}
	mustCtl(`Instance "web-2" was not registered`, "deregister", "web-2")
	mustCtl(`Instance "web-1" deregistered`, "deregister", "web-1")
	if code, _, stderr := ctl("services"); code != 0 || stderr != "No services registered\n" {
		t.Errorf("services at the end: exit %d, stderr %q", code, stderr)
	}
}

// TestCatalogEarlyValidationMatchesServer: what storectl refuses before
// sending reads exactly as the server's refusal of the same request.
func TestCatalogEarlyValidationMatchesServer(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t)
	client := newTestClient(t, srv.Addr())
	base := []string{"catalog", "register", "--service", "web", "--id", "web-1", "--address", "10.0.0.1", "--port", "8080"}
	tests := map[string]struct {
		args []string
		in   *chainstorev1.Instance
	}{
		"port out of range": {
			args: []string{"catalog", "register", "--service", "web", "--id", "web-1", "--address", "10.0.0.1", "--port", "70000"},
			in:   &chainstorev1.Instance{Id: "web-1", Service: "web", Address: "10.0.0.1", Port: 70000},
		},
		"empty meta key": {
			args: append(append([]string{}, base...), "--meta", "=v"),
			in:   &chainstorev1.Instance{Id: "web-1", Service: "web", Address: "10.0.0.1", Port: 8080, Meta: map[string]string{"": "v"}},
		},
		"id with a space": {
			args: []string{"catalog", "register", "--service", "web", "--id", "web 1", "--address", "10.0.0.1", "--port", "8080"},
			in:   &chainstorev1.Instance{Id: "web 1", Service: "web", Address: "10.0.0.1", Port: 8080},
		},
		"empty service": {
			args: []string{"catalog", "register", "--service", "", "--id", "web-1", "--address", "10.0.0.1", "--port", "8080"},
			in:   &chainstorev1.Instance{Id: "web-1", Address: "10.0.0.1", Port: 8080},
		},
		"ttl too long": {
			args: append(append([]string{}, base...), "--ttl", "48h"),
			in:   &chainstorev1.Instance{Id: "web-1", Service: "web", Address: "10.0.0.1", Port: 8080, Ttl: durationpb.New(48 * time.Hour)},
		},
	}
	for name, tc := range tests {
		code, _, stderr := runStorectl(t, "", append([]string{"--addr", srv.Addr()}, tc.args...)...)
		_, err := client.Register(context.Background(), &chainstorev1.RegisterRequest{Instance: tc.in})
		if err == nil || api.ErrorReason(err) != api.ReasonInvalidInstance {
			t.Errorf("%s: server answered %v, want INVALID_INSTANCE", name, err)
			continue
		}
		if want := "Error registering instance: " + api.ErrorText(err) + "\n"; code != 1 || stderr != want {
			t.Errorf("%s: storectl exit %d, stderr %q; the server's refusal reads %q", name, code, stderr, want)
		}
	}
	// The same for a check note and an empty ID.
	long := strings.Repeat("x", catalog.MaxOutputLen+1)
	code, _, stderr := runStorectl(t, "", "--addr", srv.Addr(), "catalog", "check", "--note", long, "web-1", "pass")
	_, err := client.UpdateCheck(context.Background(), &chainstorev1.UpdateCheckRequest{Id: "web-1", Status: chainstorev1.HealthStatus_HEALTH_STATUS_PASSING, Note: long})
	if want := "Error updating the check: " + api.ErrorText(err) + "\n"; code != 1 || stderr != want {
		t.Errorf("note too long: storectl exit %d, stderr %q; the server's refusal reads %q", code, stderr, want)
	}
	code, _, stderr = runStorectl(t, "", "--addr", srv.Addr(), "catalog", "deregister", "")
	_, err = client.Deregister(context.Background(), &chainstorev1.DeregisterRequest{})
	if want := "Error deregistering instance: " + api.ErrorText(err) + "\n"; code != 1 || stderr != want {
		t.Errorf("empty ID: storectl exit %d, stderr %q; the server's refusal reads %q", code, stderr, want)
	}
}

// TestCatalogTTLExpires: a TTL check that is not updated goes critical
// (what storeagent's updates prevent).
func TestCatalogTTLExpires(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t)
	if code, _, stderr := runStorectl(t, "", "--addr", srv.Addr(), "catalog", "register", "--service", "web", "--id", "web-1",
		"--address", "10.0.0.1", "--port", "8080", "--ttl", "300ms"); code != 0 {
		t.Fatalf("register: %s", stderr)
	}
	if code, _, stderr := runStorectl(t, "", "--addr", srv.Addr(), "catalog", "check", "web-1", "pass"); code != 0 {
		t.Fatalf("check: %s", stderr)
	}
	testutil.Poll(t, 10*time.Second, "the check to expire", func() bool {
		_, stdout, _ := runStorectl(t, "", "--addr", srv.Addr(), "catalog", "instances", "web")
		return strings.Contains(stdout, "critical")
	})
}

func newTestClient(t *testing.T, addr string) *api.Client {
	t.Helper()
	cfg := api.DefaultClientConfig()
	cfg.Addrs = []string{addr}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
