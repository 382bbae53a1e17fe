package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// The cost of ACLs: the same calls against a single server with ACLs off
// and on (default deny, a token holding one policy of three rules), on
// real Raft with fsync'ed bbolt:
//
//	go test -run '^$' -bench ACL -benchtime 2000x ./server/

// aclBenchServer starts a single server and returns a client context:
// with acls, one carrying a token allowed to write every service.
func aclBenchServer(b *testing.B, acls bool) (*api.Client, context.Context) {
	b.Helper()
	srv := servertest.StartSingle(b, func(c *server.Config) { c.ACLEnabled = acls })
	client := servertest.NewClient(b, srv.Addr())
	ctx := b.Context()
	if !acls {
		return client, ctx
	}
	boot, err := client.ACL().Bootstrap(ctx, &chainstorev1.BootstrapRequest{})
	if err != nil {
		b.Fatal(err)
	}
	root := api.WithToken(ctx, boot.GetToken().GetSecretId())
	rules := "service_prefix \"\" { policy = \"write\" }\nservice \"admin\" { policy = \"deny\" }\noperator = \"read\""
	if _, err := client.ACL().PolicyCreate(root, &chainstorev1.PolicyCreateRequest{Name: "bench", Rules: rules}); err != nil {
		b.Fatal(err)
	}
	tk, err := client.ACL().TokenCreate(root, &chainstorev1.TokenCreateRequest{PolicyNames: []string{"bench"}})
	if err != nil {
		b.Fatal(err)
	}
	return client, api.WithToken(ctx, tk.GetToken().GetSecretId())
}

func aclModes(b *testing.B, fn func(b *testing.B, acls bool)) {
	b.Helper()
	for _, acls := range []bool{false, true} {
		name := "off"
		if acls {
			name = "on"
		}
		b.Run(name, func(b *testing.B) { fn(b, acls) })
	}
}

// BenchmarkACLPut: sequential upserts of new entries.
func BenchmarkACLPut(b *testing.B) {
	aclModes(b, func(b *testing.B, acls bool) {
		b.Helper()
		client, ctx := aclBenchServer(b, acls)
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			t0 := time.Now()
			if _, err := client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(serviceDefaults(fmt.Sprintf("s%d", i), "http"))}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		reportLatency(b, lat)
	})
}

// BenchmarkACLGetStale: stale reads, where the ACL check is the largest
// part of the server's work besides gRPC.
func BenchmarkACLGetStale(b *testing.B) {
	aclModes(b, func(b *testing.B, acls bool) {
		b.Helper()
		client, ctx := aclBenchServer(b, acls)
		if _, err := client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(serviceDefaults("web", "http"))}); err != nil {
			b.Fatal(err)
		}
		req := &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web", Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_STALE}}
		b.ResetTimer()
		for range b.N {
			if _, err := client.Get(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkACLWatch: one write of web's service-defaults followed by its
// delivery on a watch stream of web's chain (each update is checked
// against the token before it is sent).
func BenchmarkACLWatch(b *testing.B) {
	aclModes(b, func(b *testing.B, acls bool) {
		b.Helper()
		client, ctx := aclBenchServer(b, acls)
		if _, err := client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(serviceDefaults("web", "http"))}); err != nil {
			b.Fatal(err)
		}
		st, err := chainstorev1.NewChainServiceClient(client.Conn()).Watch(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sub := &chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Subscribe{Subscribe: &chainstorev1.WatchSubscribe{Id: 1, Chain: &chainstorev1.ChainRef{Service: "web"}}}}
		if err := st.Send(sub); err != nil {
			b.Fatal(err)
		}
		waitUpdate := func() {
			for {
				resp, err := st.Recv()
				if err != nil {
					b.Fatal(err)
				}
				if u := resp.GetUpdate(); u != nil {
					return
				}
				if un := resp.GetUnsubscribed(); un != nil {
					b.Fatalf("unsubscribed: %s", un.GetError())
				}
			}
		}
		waitUpdate() // the current version
		protocols := [2]string{"grpc", "http"}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			t0 := time.Now()
			if _, err := client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(serviceDefaults("web", protocols[i%2]))}); err != nil {
				b.Fatal(err)
			}
			waitUpdate()
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		reportLatency(b, lat)
	})
}
