package rpc

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// listBenchStore returns a store holding n service-defaults entries of
// about 1 KiB each (Meta padding).
func listBenchStore(b *testing.B, n int) *fsm.Store {
	b.Helper()
	f := fsm.New(nil)
	meta := map[string]string{}
	for i := range 2 {
		meta[fmt.Sprintf("k%d", i)] = strings.Repeat("x", 500)
	}
	logs := make([]*raft.Log, 0, 512)
	var idx uint64
	flush := func() {
		for _, r := range f.ApplyBatch(logs) {
			if res, ok := r.(fsm.ApplyResult); !ok || !res.Applied {
				b.Fatalf("setup write %+v", r)
			}
		}
		logs = logs[:0]
	}
	for i := range n {
		idx++
		e := &chain.ServiceConfigEntry{Kind: chain.KindServiceDefaults, Name: fmt.Sprintf("svc-%06d", i), Protocol: "http", Meta: meta}
		data, err := fsm.EncodeCommand(fsm.Command{Op: fsm.OpUpsert, Entry: e})
		if err != nil {
			b.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: idx, Type: raft.LogCommand, Data: data})
		if len(logs) == cap(logs) {
			flush()
		}
	}
	flush()
	return f.Store()
}

// liveHeap returns the bytes of live heap objects after a full GC.
func liveHeap() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// BenchmarkList100k lists a kind of 100,000 entries (~1 KiB each) in one
// go (legacy, with the cap lifted) and page by page (bodies, and names
// only), building and marshaling the response messages the server would
// send. It reports the largest response (max-msg-bytes), the sum of all
// responses (bytes/op), and the peak live heap held by the listing
// (peak-heap-bytes: measured after a full GC while each response and its
// wire form are held, with the timer stopped; the store itself is
// excluded).
//
//	go test -run '^$' -bench List100k -benchtime 2x ./rpc/
func BenchmarkList100k(b *testing.B) {
	store := listBenchStore(b, 100_000)
	lim := DefaultListLimits()
	b.Run("legacy-unpaged", func(b *testing.B) {
		lim := lim
		lim.MaxLegacyBytes = 1 << 40
		benchList(b, func(emit func(*chainstorev1.ListResponse)) error {
			resp, _, _, err := listLegacy(store, chain.KindServiceDefaults, lim, keepAll)
			if err == nil {
				emit(resp)
			}
			return err
		})
	})
	for _, namesOnly := range []bool{false, true} {
		b.Run(fmt.Sprintf("paged-names-only=%v", namesOnly), func(b *testing.B) {
			benchList(b, func(emit func(*chainstorev1.ListResponse)) error {
				req := &chainstorev1.ListRequest{Kind: string(chain.KindServiceDefaults), PageSize: uint32(lim.MaxPageSize), NamesOnly: namesOnly}
				for {
					resp, _, _, err := listPage(store, chain.KindServiceDefaults, req, lim, keepAll)
					if err != nil {
						return err
					}
					emit(resp)
					if resp.NextPageToken == "" {
						return nil
					}
					req.PageToken = resp.NextPageToken
				}
			})
		})
	}
}

func benchList(b *testing.B, run func(emit func(*chainstorev1.ListResponse)) error) { //nolint:thelper // the body of a sub-benchmark
	var total, maxMsg, entries int
	var peak uint64
	base := liveHeap()
	b.ResetTimer()
	for range b.N {
		total, maxMsg, entries = 0, 0, 0
		err := run(func(resp *chainstorev1.ListResponse) {
			// Marshal as gRPC would, then drop it: one page at a time.
			wire := mustMarshal(b, resp)
			total += len(wire)
			maxMsg = max(maxMsg, len(wire))
			entries += len(resp.Entries)
			b.StopTimer()
			if h := liveHeap(); h > base {
				peak = max(peak, h-base)
			}
			runtime.KeepAlive(wire)
			b.StartTimer()
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if entries != 100_000 {
		b.Fatalf("listed %d entries, want 100000", entries)
	}
	b.ReportMetric(float64(total), "bytes/op")
	b.ReportMetric(float64(maxMsg), "max-msg-bytes")
	b.ReportMetric(float64(peak), "peak-heap-bytes")
}

func mustMarshal(b *testing.B, m proto.Message) []byte {
	b.Helper()
	out, err := proto.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// keepAll is the filter of a request with ACLs off.
func keepAll(*fsm.StoredEntry) bool { return true }
