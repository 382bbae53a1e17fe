package cluster

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMetaRoundTrip(t *testing.T) {
	t.Parallel()
	tests := map[string]nodeMeta{
		"zero":     {},
		"typical":  {ID: "0b3c7a52-6d1e-4f7a-9d7e-2f1c5e9a8b10", Datacenter: "dc1", RaftAddr: "10.0.0.1:8300", GRPCAddr: "10.0.0.1:8502", BootstrapExpect: 3},
		"all set":  {ID: "a", Datacenter: "b", RaftAddr: "c:1", GRPCAddr: "d:2", HasState: true, Leaving: true, BootstrapExpect: 5, BootstrapHash: ^uint64(0)},
		"has hash": {ID: "x", HasState: true, BootstrapHash: 42},
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeMeta(m.encode())
			if err != nil {
				t.Fatalf("decodeMeta(encode(%+v)) error = %v", m, err)
			}
			if diff := cmp.Diff(m, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeMetaRejectsBadInput(t *testing.T) {
	t.Parallel()
	good := nodeMeta{ID: "id", Datacenter: "dc1", RaftAddr: "r:1", GRPCAddr: "g:2", BootstrapExpect: 3}.encode()
	// Every strict prefix is truncated.
	for i := range len(good) {
		if _, err := decodeMeta(good[:i]); !errors.Is(err, errInvalidMeta) {
			t.Errorf("decodeMeta(first %d of %d bytes) error = %v, want errInvalidMeta", i, len(good), err)
		}
	}
	v2 := append([]byte{2}, good[1:]...)
	if _, err := decodeMeta(v2); !errors.Is(err, errInvalidMeta) {
		t.Errorf("decodeMeta(version 2) error = %v, want errInvalidMeta", err)
	}
	// Fields appended by a newer compatible build are ignored.
	got, err := decodeMeta(append(append([]byte(nil), good...), 0xff, 0x01))
	if err != nil || got.ID != "id" || got.GRPCAddr != "g:2" {
		t.Errorf("decodeMeta(with trailing bytes) = %+v, %v; want the fields, nil", got, err)
	}
}

func TestDecodeMetaCopies(t *testing.T) {
	t.Parallel()
	b := nodeMeta{ID: "abc"}.encode()
	m, err := decodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'z'
	}
	if m.ID != "abc" {
		t.Errorf("decoded ID changed with the buffer: %q", m.ID)
	}
}
