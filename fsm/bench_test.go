package fsm

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// benchFSM returns an FSM holding n service-defaults entries, plus the
// index of the last log.
func benchFSM(b *testing.B, n int) (*FSM, uint64) {
	b.Helper()
	f := New(nil)
	logs := make([]*raft.Log, 0, 256)
	var idx uint64
	flush := func() {
		for _, r := range f.ApplyBatch(logs) {
			if res := r.(ApplyResult); !res.Applied {
				b.Fatalf("setup write %+v", res)
			}
		}
		logs = logs[:0]
	}
	for i := range n {
		idx++
		data, err := EncodeCommand(Command{Op: OpUpsert, Entry: serviceDefaults(fmt.Sprintf("svc-%05d", i), "http")})
		if err != nil {
			b.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: idx, Type: raft.LogCommand, Data: data})
		if len(logs) == cap(logs) {
			flush()
		}
	}
	flush()
	return f, idx
}

// BenchmarkApplyUpsert measures one Apply (decode, Prepare, graph
// validation, memdb write, change-set) of a service-defaults upsert over
// an existing key, with 10k entries in the store.
func BenchmarkApplyUpsert(b *testing.B) {
	f, idx := benchFSM(b, 10_000)
	cmds := make([][]byte, 64)
	for i := range cmds {
		data, err := EncodeCommand(Command{Op: OpUpsert, Entry: serviceDefaults(fmt.Sprintf("svc-%05d", i*151), "grpc")})
		if err != nil {
			b.Fatal(err)
		}
		cmds[i] = data
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		idx++
		res := f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: cmds[i%len(cmds)]}).(ApplyResult)
		if !res.Applied {
			b.Fatalf("apply %+v", res)
		}
		i++
	}
}

// BenchmarkSnapshotPersist10k measures Snapshot+Persist of 10k entries.
func BenchmarkSnapshotPersist10k(b *testing.B) {
	f, _ := benchFSM(b, 10_000)
	b.ReportAllocs()
	var size int64
	for b.Loop() {
		snap, err := f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		sink := &countSink{}
		if err := snap.Persist(sink); err != nil {
			b.Fatal(err)
		}
		snap.Release()
		size = sink.n
	}
	b.ReportMetric(float64(size), "bytes/snapshot")
}

// BenchmarkRestore10k measures Restore of a 10k-entry snapshot.
func BenchmarkRestore10k(b *testing.B) {
	f, _ := benchFSM(b, 10_000)
	snap, err := f.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		b.Fatal(err)
	}
	data := sink.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		g := New(nil)
		if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			b.Fatal(err)
		}
	}
}

type countSink struct{ n int64 }

func (s *countSink) Write(p []byte) (int, error) { s.n += int64(len(p)); return len(p), nil }
func (s *countSink) Close() error                { return nil }
func (s *countSink) Cancel() error               { return nil }
func (s *countSink) ID() string                  { return "count" }
