package api

import (
	"context"
	"errors"
	"fmt"
	"io"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// SnapshotChunkSize is the size of the chunks RestoreSnapshot sends (the
// server accepts up to 1 MiB of data per message).
const SnapshotChunkSize = 1 << 20

// SaveSnapshot streams a backup file of the cluster's state into w and
// returns the number of bytes written. The leader takes it after a
// ReadIndex round (any server relays it); with stale, the server reached
// answers from its own state. ctx should carry a deadline: streams get no
// default one. w may hold a partial file after an error.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer, stale bool) (int64, error) {
	stream, err := c.SnapshotSave(ctx, &chainstorev1.SnapshotSaveRequest{Stale: stale})
	if err != nil {
		return 0, err
	}
	var n int64
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return 0, errors.New("save snapshot: the server sent no data")
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
		k, err := w.Write(m.GetData())
		n += int64(k)
		if err != nil {
			return n, fmt.Errorf("write snapshot: %w", err)
		}
	}
}

// RestoreSnapshot sends the backup file read from r to the cluster, which
// checks it and restores it through Raft on every server. ctx should carry
// a deadline.
func (c *Client) RestoreSnapshot(ctx context.Context, r io.Reader) (*chainstorev1.SnapshotRestoreResponse, error) {
	// Cancelling the stream on a read error makes the server drop what it
	// received: a half-sent file is never restored.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.SnapshotRestore(ctx)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, SnapshotChunkSize)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := stream.Send(&chainstorev1.SnapshotRestoreRequest{Data: buf[:n]}); err != nil {
				if errors.Is(err, io.EOF) {
					break // the server ended the stream: CloseAndRecv has its status
				}
				return nil, err
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return nil, fmt.Errorf("read snapshot: %w", rerr)
		}
	}
	return stream.CloseAndRecv()
}
