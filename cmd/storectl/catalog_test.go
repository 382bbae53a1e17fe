package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// The catalog commands against a fake CatalogService (served with the
// fake entries and operator services, see startFakeServer). Outputs are
// pinned in testdata/catalog-*.golden; `go test ./cmd/storectl/ -update`
// rewrites them (review the diff).

// fakeCatalog serves f's answers as the CatalogService.
type fakeCatalog struct {
	chainstorev1.UnimplementedCatalogServiceServer
	f *fakeServer
}

func (s fakeCatalog) Register(_ context.Context, r *chainstorev1.RegisterRequest) (*chainstorev1.RegisterResponse, error) {
	return fakeCall[*chainstorev1.RegisterResponse](s.f, "Register", r)
}

func (s fakeCatalog) Deregister(_ context.Context, r *chainstorev1.DeregisterRequest) (*chainstorev1.DeregisterResponse, error) {
	return fakeCall[*chainstorev1.DeregisterResponse](s.f, "Deregister", r)
}

func (s fakeCatalog) UpdateCheck(_ context.Context, r *chainstorev1.UpdateCheckRequest) (*chainstorev1.UpdateCheckResponse, error) {
	return fakeCall[*chainstorev1.UpdateCheckResponse](s.f, "UpdateCheck", r)
}

func (s fakeCatalog) Instances(_ context.Context, r *chainstorev1.InstancesRequest) (*chainstorev1.InstancesResponse, error) {
	return fakeCall[*chainstorev1.InstancesResponse](s.f, "Instances", r)
}

func (s fakeCatalog) Services(_ context.Context, r *chainstorev1.ServicesRequest) (*chainstorev1.ServicesResponse, error) {
	return fakeCall[*chainstorev1.ServicesResponse](s.f, "Services", r)
}

// Server errors as the server builds them.
var (
	errNoLeader       = entryErr(codes.Unavailable, "no cluster leader", api.ReasonNoLeader, "")
	errUnknownOutcome = entryErr(codes.Unknown, "outcome unknown: leadership was lost while the write was being committed", api.ReasonUnknownOutcome, "")
	errNotFound       = status.Error(codes.NotFound, `instance "web-9" not found`)
)

// invalidInstanceErr is the server's refusal of an instance.
func invalidInstanceErr(id, text string) error {
	st, err := status.New(codes.InvalidArgument, text).WithDetails(&errdetails.ErrorInfo{
		Reason: api.ReasonInvalidInstance, Domain: api.ErrorDomain,
		Metadata: map[string]string{api.MetaID: id, api.MetaError: text},
	})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

var (
	webInstances = &chainstorev1.InstancesResponse{Instances: []*chainstorev1.InstanceHealth{
		{
			Instance: &chainstorev1.Instance{Id: "web-1", Service: "web", Address: "10.0.0.1", Port: 8080, Datacenter: "dc1",
				Meta: map[string]string{"version": "v1", "az": "a"}, Tags: []string{"blue", "primary"}, Ttl: durationpb.New(10 * time.Second)},
			Status: chainstorev1.HealthStatus_HEALTH_STATUS_PASSING, Output: "updated by storeagent", CreateIndex: 5, ModifyIndex: 12,
		},
		{
			Instance: &chainstorev1.Instance{Id: "web-2", Service: "web", Address: "::1", Port: 8081, Datacenter: "dc1", Ttl: durationpb.New(30 * time.Second)},
			Status:   chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL, Output: "TTL expired", CreateIndex: 6, ModifyIndex: 14,
		},
		{
			Instance: &chainstorev1.Instance{Id: "web-3", Service: "web", Address: "web3.internal", Port: 80, Datacenter: "dc1"},
			Status:   chainstorev1.HealthStatus_HEALTH_STATUS_WARNING, Output: "disk 91% full\nslow\tresponses", CreateIndex: 7, ModifyIndex: 7,
		},
	}}
	services = &chainstorev1.ServicesResponse{Services: []*chainstorev1.ServiceSummary{
		{Name: "api", Instances: 1, Passing: 0},
		{Name: "web", Instances: 3, Passing: 1},
	}}
)

func TestCatalogCommands(t *testing.T) {
	t.Parallel()
	register := []string{"catalog", "register", "--service", "web", "--id", "web-1", "--address", "10.0.0.1", "--port", "8080"}
	with := func(base []string, extra ...string) []string { return append(slices.Clone(base), extra...) }
	regOK := map[string]proto.Message{"Register": &chainstorev1.RegisterResponse{Index: 7}}
	cases := map[string]struct {
		args      []string
		resp      map[string]proto.Message
		errs      map[string]error
		failFirst int
	}{
		// The group itself.
		"no-subcommand":      {args: []string{"catalog"}},
		"help":               {args: []string{"catalog", "--help"}},
		"help-subcommand":    {args: []string{"catalog", "help"}},
		"unknown-subcommand": {args: []string{"catalog", "frob"}},

		// register
		"register": {args: with(register, "--meta", "version=v1", "--meta", "az=a", "--tag", "blue", "--ttl", "10s"), resp: regOK},
		"register-retried-without-leader": {args: register, resp: regOK, failFirst: 2,
			errs: map[string]error{"Register": errNoLeader}},
		"register-retried-after-unknown-outcome": {args: register, resp: regOK, failFirst: 1,
			errs: map[string]error{"Register": errUnknownOutcome}},
		"register-rejected-by-server": {args: register, resp: regOK,
			errs: map[string]error{"Register": invalidInstanceErr("web-1", `instance "web-1": Datacenter: "dc2" is not this cluster's datacenter "dc1"`)}},
		"register-server-error": {args: register,
			errs: map[string]error{"Register": status.Error(codes.ResourceExhausted, "server busy, the request was not started: timed out enqueuing operation")}},
		"register-missing-flags":      {args: []string{"catalog", "register", "--service", "web", "--address", "10.0.0.1"}},
		"register-extra-argument":     {args: with(register, "web-2")},
		"register-port-not-a-number":  {args: []string{"catalog", "register", "--service", "web", "--id", "web-1", "--address", "10.0.0.1", "--port", "http"}},
		"register-port-out-of-range":  {args: []string{"catalog", "register", "--service", "web", "--id", "web-1", "--address", "10.0.0.1", "--port", "70000"}},
		"register-port-zero":          {args: []string{"catalog", "register", "--service", "web", "--id", "web-1", "--address", "10.0.0.1", "--port", "0"}},
		"register-meta-without-equal": {args: with(register, "--meta", "version")},
		"register-meta-twice":         {args: with(register, "--meta", "version=v1", "--meta", "version=v2")},
		"register-empty-meta-key":     {args: with(register, "--meta", "=v1")},
		"register-id-with-space":      {args: []string{"catalog", "register", "--service", "web", "--id", "web 1", "--address", "10.0.0.1", "--port", "80"}},
		"register-ttl-too-short":      {args: with(register, "--ttl", "10ms")},
		"register-bad-ttl":            {args: with(register, "--ttl", "soon")},

		// check
		"check":                {args: []string{"catalog", "check", "web-1", "pass"}, resp: map[string]proto.Message{"UpdateCheck": &chainstorev1.UpdateCheckResponse{Index: 9}}},
		"check-warn-with-note": {args: []string{"catalog", "check", "--note", "disk 91% full", "web-1", "warn"}, resp: map[string]proto.Message{"UpdateCheck": &chainstorev1.UpdateCheckResponse{Index: 9}}},
		"check-fail":           {args: []string{"catalog", "check", "web-1", "fail", "--note", "shutting down"}, resp: map[string]proto.Message{"UpdateCheck": &chainstorev1.UpdateCheckResponse{Index: 9}}},
		"check-unknown-status": {args: []string{"catalog", "check", "web-1", "ok"}},
		"check-missing-status": {args: []string{"catalog", "check", "web-1"}},
		"check-empty-id":       {args: []string{"catalog", "check", "", "pass"}},
		"check-not-found":      {args: []string{"catalog", "check", "web-9", "pass"}, errs: map[string]error{"UpdateCheck": errNotFound}},
		"check-retried-without-leader": {args: []string{"catalog", "check", "web-1", "pass"}, failFirst: 1,
			resp: map[string]proto.Message{"UpdateCheck": &chainstorev1.UpdateCheckResponse{Index: 9}},
			errs: map[string]error{"UpdateCheck": errNoLeader}},

		// deregister
		"deregister":                {args: []string{"catalog", "deregister", "web-1"}, resp: map[string]proto.Message{"Deregister": &chainstorev1.DeregisterResponse{Index: 11, Existed: true}}},
		"deregister-not-registered": {args: []string{"catalog", "deregister", "web-9"}, resp: map[string]proto.Message{"Deregister": &chainstorev1.DeregisterResponse{Index: 11}}},
		"deregister-missing-id":     {args: []string{"catalog", "deregister"}},
		"deregister-empty-id":       {args: []string{"catalog", "deregister", ""}},
		"deregister-two-ids":        {args: []string{"catalog", "deregister", "web-1", "web-2"}},
		"deregister-server-error":   {args: []string{"catalog", "deregister", "web-1"}, errs: map[string]error{"Deregister": status.Error(codes.PermissionDenied, "not allowed")}},
		// The first attempt's outcome is unknown; the second finds the
		// instance gone, which the first attempt may have done.
		"deregister-retried-after-unknown-outcome": {args: []string{"catalog", "deregister", "web-1"}, failFirst: 1,
			resp: map[string]proto.Message{"Deregister": &chainstorev1.DeregisterResponse{Index: 11}},
			errs: map[string]error{"Deregister": errUnknownOutcome}},

		// instances
		"instances":                      {args: []string{"catalog", "instances", "web"}, resp: map[string]proto.Message{"Instances": webInstances}},
		"instances-json":                 {args: []string{"catalog", "instances", "--json", "web"}, resp: map[string]proto.Message{"Instances": webInstances}},
		"instances-empty":                {args: []string{"catalog", "instances", "web"}, resp: map[string]proto.Message{"Instances": &chainstorev1.InstancesResponse{}}},
		"instances-empty-passing":        {args: []string{"catalog", "instances", "web", "--passing"}, resp: map[string]proto.Message{"Instances": &chainstorev1.InstancesResponse{}}},
		"instances-empty-json":           {args: []string{"catalog", "instances", "web", "--json"}, resp: map[string]proto.Message{"Instances": &chainstorev1.InstancesResponse{}}},
		"instances-no-leader":            {args: []string{"catalog", "instances", "web"}, errs: map[string]error{"Instances": errNoLeader}},
		"instances-missing-service":      {args: []string{"catalog", "instances"}},
		"instances-stale-and-consistent": {args: []string{"catalog", "instances", "web", "--stale", "--consistent"}},

		// services
		"services":           {args: []string{"catalog", "services"}, resp: map[string]proto.Message{"Services": services}},
		"services-json":      {args: []string{"catalog", "services", "--json"}, resp: map[string]proto.Message{"Services": services}},
		"services-empty":     {args: []string{"catalog", "services"}, resp: map[string]proto.Message{"Services": &chainstorev1.ServicesResponse{}}},
		"services-extra-arg": {args: []string{"catalog", "services", "web"}},
		"services-bad-flag":  {args: []string{"catalog", "services", "--passing"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{reqs: map[string]proto.Message{}, resp: tc.resp, errs: tc.errs, failFirst: tc.failFirst}
			addr := startFakeServer(t, f)
			code, stdout, stderr := runStorectl(t, "", append([]string{"--addr", addr}, tc.args...)...)
			var got bytes.Buffer
			fmt.Fprintf(&got, "$ storectl %s\nexit %d\n--- stdout\n%s--- stderr\n%s", quoteArgs(tc.args), code, stdout, stderr)
			f.mu.Lock()
			fmt.Fprintf(&got, "--- calls\n%v\n", callList(f.calls))
			f.mu.Unlock()
			testutil.Golden(t, filepath.Join("testdata", "catalog-"+name+".golden"), got.Bytes())
		})
	}
}

// quoteArgs renders a command line, quoting the arguments that are empty
// or hold a space.
func quoteArgs(args []string) string {
	var b bytes.Buffer
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a == "" || strings.ContainsAny(a, " \t\n") {
			a = strconv.Quote(a)
		}
		b.WriteString(a)
	}
	return b.String()
}

// callList renders the calls a fake server received, sorted by method
// ("none" when there were none).
func callList(calls map[string]int) string {
	if len(calls) == 0 {
		return "none"
	}
	var b bytes.Buffer
	for i, m := range slices.Sorted(maps.Keys(calls)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d", m, calls[m])
	}
	return b.String()
}

// TestCatalogRequests checks what each command sends.
func TestCatalogRequests(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		args   []string
		method string
		want   proto.Message
	}{
		"register": {
			args: []string{"catalog", "register", "--service", "web", "--id", "web-1", "--address", "10.0.0.1", "--port", "8080",
				"--meta", "version=v1", "--meta", "url=http://x/?a=b", "--tag", "blue", "--tag", "green", "--ttl", "1m30s"},
			method: "Register",
			want: &chainstorev1.RegisterRequest{Instance: &chainstorev1.Instance{Id: "web-1", Service: "web", Address: "10.0.0.1", Port: 8080,
				Meta: map[string]string{"version": "v1", "url": "http://x/?a=b"}, Tags: []string{"blue", "green"}, Ttl: durationpb.New(90 * time.Second)}},
		},
		"register without a TTL": {
			args:   []string{"catalog", "register", "--service", "web", "--id", "web-1", "--address", "10.0.0.1", "--port", "8080"},
			method: "Register",
			want:   &chainstorev1.RegisterRequest{Instance: &chainstorev1.Instance{Id: "web-1", Service: "web", Address: "10.0.0.1", Port: 8080}},
		},
		"check pass": {
			args: []string{"catalog", "check", "web-1", "pass"}, method: "UpdateCheck",
			want: &chainstorev1.UpdateCheckRequest{Id: "web-1", Status: chainstorev1.HealthStatus_HEALTH_STATUS_PASSING},
		},
		"check warning with a note": {
			args: []string{"catalog", "check", "web-1", "warning", "--note", "slow"}, method: "UpdateCheck",
			want: &chainstorev1.UpdateCheckRequest{Id: "web-1", Status: chainstorev1.HealthStatus_HEALTH_STATUS_WARNING, Note: "slow"},
		},
		"check fail": {
			args: []string{"catalog", "check", "web-1", "fail"}, method: "UpdateCheck",
			want: &chainstorev1.UpdateCheckRequest{Id: "web-1", Status: chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL},
		},
		"deregister": {
			args: []string{"catalog", "deregister", "web-1"}, method: "Deregister",
			want: &chainstorev1.DeregisterRequest{Id: "web-1"},
		},
		"instances": {
			args: []string{"catalog", "instances", "web"}, method: "Instances",
			want: &chainstorev1.InstancesRequest{Service: "web", Options: &chainstorev1.QueryOptions{}},
		},
		"instances passing, stale, blocking": {
			args: []string{"catalog", "instances", "web", "--passing", "--stale", "--index", "42", "--wait", "30s"}, method: "Instances",
			want: &chainstorev1.InstancesRequest{Service: "web", PassingOnly: true, Options: &chainstorev1.QueryOptions{
				Consistency: chainstorev1.Consistency_CONSISTENCY_STALE, MinIndex: 42, Wait: durationpb.New(30 * time.Second)}},
		},
		"services consistent": {
			args: []string{"catalog", "services", "--consistent"}, method: "Services",
			want: &chainstorev1.ServicesRequest{Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_CONSISTENT}},
		},
		"global flags after catalog": {
			args: []string{"catalog", "--addr", "ADDR", "services", "--index", "3"}, method: "Services",
			want: &chainstorev1.ServicesRequest{Options: &chainstorev1.QueryOptions{MinIndex: 3}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{reqs: map[string]proto.Message{}, resp: map[string]proto.Message{
				"Register": &chainstorev1.RegisterResponse{}, "UpdateCheck": &chainstorev1.UpdateCheckResponse{},
				"Deregister": &chainstorev1.DeregisterResponse{}, "Instances": &chainstorev1.InstancesResponse{},
				"Services": &chainstorev1.ServicesResponse{},
			}}
			addr := startFakeServer(t, f)
			args := slices.Clone(tc.args)
			if i := slices.Index(args, "ADDR"); i >= 0 {
				args[i] = addr
			} else {
				args = append([]string{"--addr", addr}, args...)
			}
			if code, _, stderr := runStorectl(t, "", args...); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if diff := cmp.Diff(tc.want, f.last(tc.method), protocmp.Transform()); diff != "" {
				t.Errorf("%s request (-want +got):\n%s", tc.method, diff)
			}
		})
	}
}
