package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/snapshot"
)

// SnapshotBackend is the snapshot part of the backend (*rpc.Local).
type SnapshotBackend interface {
	SnapshotSave(ctx context.Context, req *chainstorev1.SnapshotSaveRequest, send func([]byte) error) error
	SnapshotRestore(ctx context.Context, body io.Reader) (*chainstorev1.SnapshotRestoreResponse, error)
}

// snapshotTransferTimeout is how long reading a restore's body or writing
// a save's file may take, replacing the server's ReadTimeout and
// WriteTimeout for these two endpoints (a file may be hundreds of MiB).
const snapshotTransferTimeout = 10 * time.Minute

// snapshotSave is GET /v1/snapshot: the backup file (operator:write),
// taken on the leader or, with ?stale, on this server. X-Consul-Index is
// the index the snapshot was taken at, as in Consul. The file is
// collected whole first, so an error is always a clean error answer,
// never a truncated file.
func (s *Server) snapshotSave(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDC(r); err != nil {
		return err
	}
	_, stale := r.URL.Query()["stale"]
	var file bytes.Buffer
	err := s.backend.SnapshotSave(requestContext(r), &chainstorev1.SnapshotSaveRequest{Stale: stale}, func(b []byte) error {
		if int64(file.Len()+len(b)) > s.cfg.MaxSnapshotSize {
			return fmt.Errorf("the snapshot is larger than %d bytes", s.cfg.MaxSnapshotSize)
		}
		file.Write(b)
		return nil
	})
	if err != nil {
		return err
	}
	h, _, err := snapshot.Read(bytes.NewReader(file.Bytes()), s.cfg.MaxSnapshotSize)
	if err != nil {
		return fmt.Errorf("check the snapshot taken: %w", err)
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(snapshotTransferTimeout))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(file.Len()))
	setIndex(w, h.Index)
	_, _ = w.Write(file.Bytes())
	return nil
}

// snapshotRestore is PUT /v1/snapshot: restores the backup file in the
// body (operator:write, checked before the body is read). A body over
// the snapshot size limit is a 413; a file that is not a valid snapshot
// of this datacenter a 400 naming the problem; nothing changes then.
func (s *Server) snapshotRestore(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDC(r); err != nil {
		return err
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(snapshotTransferTimeout))
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxSnapshotSize)
	if _, err := s.backend.SnapshotRestore(requestContext(r), body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{code: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("Request body too large: a snapshot is at most %d bytes", mbe.Limit)}
		}
		return err
	}
	return nil
}
