package rpc

import (
	"context"
	"errors"
	"io"
)

// The entries tests' stand-in Raft does not restore snapshots; the
// snapshot RPCs are tested against real servers (server/snapshot_test.go).

func (r *esRaft) RestoreSnapshot(context.Context, uint64, int64, io.Reader) error {
	return errors.New("esRaft: snapshot restore not supported")
}

func (r *esRaft) LastIndex() uint64 { return 0 }
