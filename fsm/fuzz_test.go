package fsm

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// FuzzDecodeCommand: DecodeCommand never panics; whatever it accepts
// re-encodes and decodes to the same command; and applying the raw bytes
// to an FSM never panics and always yields an ApplyResult.
func FuzzDecodeCommand(f *testing.F) {
	seeds := []Command{
		{Op: OpUpsert, Entry: serviceDefaults("web", "http")},
		{Op: OpUpsertCAS, Entry: selfSplitter("main"), CASIndex: 3},
		{Op: OpUpsert, Entry: resolver("main", redirectTo("other", "v1"))},
		{Op: OpUpsert, Entry: proxyDefaults("http")},
		{Op: OpDelete, Key: sdKey("web")},
		{Op: OpDeleteCAS, Key: sdKey("web"), CASIndex: 1},
		{Op: OpNoop},
		{Op: OpACLBootstrap, ACLToken: aclToken("a", "s")},
		{Op: OpACLPolicySet, ACLPolicy: aclPolicy("p", "n", `service "web" { policy = "read" }`)},
		{Op: OpACLTokenSet, ACLToken: aclToken("t", "s2", "p")},
		{Op: OpACLTokenDelete, ACLID: "t"},
	}
	for _, c := range seeds {
		b, err := EncodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Log format v0 (JSON bodies), which EncodeCommand no longer writes.
	for _, c := range seeds {
		b, err := EncodeCommandFormat(c, LogFormatV0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff})
	f.Add([]byte{byte(OpUpsert), '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err == nil {
			b2, err := EncodeCommand(c)
			if err != nil {
				t.Fatalf("EncodeCommand(DecodeCommand(%q)) = %v", b, err)
			}
			c2, err := DecodeCommand(b2)
			if err != nil {
				t.Fatalf("DecodeCommand(re-encoded) = %v", err)
			}
			b3, err := EncodeCommand(c2)
			if err != nil || !bytes.Equal(b2, b3) {
				t.Fatalf("encoding not stable: %q vs %q (%v)", b2, b3, err)
			}
		} else if !errors.Is(err, ErrMalformedCommand) && !errors.Is(err, ErrUnknownOp) {
			t.Fatalf("DecodeCommand error %v wraps no sentinel", err)
		}

		fsm := New(nil)
		// Some state for graph validation to chew on.
		seed := []*raft.Log{
			{Index: 1, Type: raft.LogCommand, Data: mustEncodeFuzz(t, Command{Op: OpUpsert, Entry: proxyDefaults("http")})},
			{Index: 2, Type: raft.LogCommand, Data: mustEncodeFuzz(t, Command{Op: OpUpsert, Entry: selfSplitter("main")})},
			{Index: 3, Type: raft.LogCommand, Data: mustEncodeFuzz(t, Command{Op: OpUpsert, Entry: resolver("web", withSubsets("v1"))})},
		}
		fsm.ApplyBatch(seed)
		hash := fsm.Store().Hash()
		res, ok := fsm.Apply(&raft.Log{Index: 4, Type: raft.LogCommand, Data: b}).(ApplyResult)
		if !ok || res.Index != 4 {
			t.Fatalf("Apply returned %+v (%v)", res, ok)
		}
		if (!res.Applied || res.Err != nil) && fsm.Store().Hash() != hash {
			t.Fatalf("a command that was not applied changed the store: %+v", res)
		}
		if fsm.AppliedIndex() != 4 {
			t.Fatalf("AppliedIndex = %d, want 4", fsm.AppliedIndex())
		}
	})
}

func mustEncodeFuzz(t *testing.T, c Command) []byte {
	t.Helper()
	b, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzRestore: arbitrary or truncated bytes never panic Restore; a failed
// restore leaves the FSM exactly as it was (never half-restored); a
// successful one yields a store that snapshots to a valid snapshot again.
func FuzzRestore(f *testing.F) {
	src := New(nil)
	src.ApplyBatch([]*raft.Log{
		{Index: 1, Type: raft.LogCommand, Data: mustEncodeFuzzF(f, Command{Op: OpUpsert, Entry: proxyDefaults("http")})},
		{Index: 2, Type: raft.LogCommand, Data: mustEncodeFuzzF(f, Command{Op: OpUpsert, Entry: serviceDefaults("web", "http")})},
		{Index: 3, Type: raft.LogCommand, Data: mustEncodeFuzzF(f, Command{Op: OpUpsert, Entry: selfSplitter("web")})},
		{Index: 4, Type: raft.LogCommand, Data: mustEncodeFuzzF(f, Command{Op: OpUpsert, Entry: serviceDefaults("gone", "")})},
		{Index: 5, Type: raft.LogCommand, Data: mustEncodeFuzzF(f, Command{Op: OpDelete, Key: sdKey("gone")})},
	})
	snap, err := src.Snapshot()
	if err != nil {
		f.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		f.Fatal(err)
	}
	good := sink.Bytes()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:20])
	f.Add([]byte{})
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		fsm := New(nil)
		fsm.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: mustEncodeFuzz(t, Command{Op: OpUpsert, Entry: serviceDefaults("keep", "")})})
		s, hash, feed := fsm.Store(), fsm.Store().Hash(), fsm.Feed().Head()
		err := fsm.Restore(io.NopCloser(bytes.NewReader(b)))
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) && !errors.Is(err, ErrUnsupportedSnapshotVersion) {
				t.Fatalf("Restore error %v wraps no sentinel", err)
			}
			if fsm.Store() != s || s.Hash() != hash || fsm.AppliedIndex() != 1 || isClosed(s.AbandonCh()) || isClosed(feed.Ready()) {
				t.Fatalf("failed Restore changed the FSM")
			}
			return
		}
		// Accepted: it must be a well-formed state that round-trips.
		snap, err := fsm.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		var sink memSink
		if err := snap.Persist(&sink); err != nil {
			t.Fatalf("Persist of restored state = %v", err)
		}
		again := New(nil)
		if err := again.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
			t.Fatalf("restore of re-persisted state = %v", err)
		}
		if again.Store().Hash() != fsm.Store().Hash() {
			t.Fatalf("re-persisted state hashes differently")
		}
	})
}

func mustEncodeFuzzF(f *testing.F, c Command) []byte {
	f.Helper()
	b, err := EncodeCommand(c)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
