package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chainstore/chainstore/internal/servertest"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// BenchmarkReadHTTPvsGRPC compares one entry read through the HTTP API
// and through gRPC, on one server, in both consistency modes
// (go test -run '^$' -bench ReadHTTPvsGRPC ./httpapi/).
func BenchmarkReadHTTPvsGRPC(b *testing.B) {
	s := servertest.StartSingle(b)
	s.Put(`{"Kind":"service-defaults","Name":"web","Protocol":"http"}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	grpcClient := chainstorev1.NewEntriesServiceClient(servertest.NewClient(b, s.Addr()).Conn())
	for _, mode := range []struct {
		name  string
		query string
		cons  chainstorev1.Consistency
	}{
		{"stale", "?stale", chainstorev1.Consistency_CONSISTENCY_STALE},
		{"default", "", chainstorev1.Consistency_CONSISTENCY_DEFAULT},
	} {
		url := "http://" + s.HTTPAddr() + "/v1/config/service-defaults/web" + mode.query
		b.Run("http-"+mode.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"web"`) {
						b.Fatalf("GET = %d %s", resp.StatusCode, body)
					}
				}
			})
		})
		b.Run("grpc-"+mode.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := grpcClient.Get(context.Background(), &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web",
						Options: &chainstorev1.QueryOptions{Consistency: mode.cons}})
					if err != nil || !resp.GetFound() {
						b.Fatalf("Get = %v, %v", resp, err)
					}
				}
			})
		})
	}
}
