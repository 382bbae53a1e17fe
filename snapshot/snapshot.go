// Package snapshot is the file format of a chainstore backup: a header
// naming where and when the snapshot was taken, the FSM snapshot (package
// fsm's format) as payload, and a SHA-256 checksum over everything before
// it. storectl snapshot save writes it, restore sends it back, inspect
// reads its header; the operator RPCs stream it unchanged.
//
// Layout (integers big-endian):
//
//	magic        8 bytes  "CSBACKUP"
//	version      uint16   format version (1)
//	header len   uint32   length of the header JSON (at most MaxHeaderSize)
//	header       JSON     Header (the payload's length is Header.Size)
//	payload      Size bytes: an FSM snapshot
//	checksum     32 bytes SHA-256 of every byte above
//
// Nothing may follow the checksum. Read refuses a file without the magic
// (ErrNotSnapshot), a newer format (ErrUnsupportedVersion), a truncated or
// altered file (ErrCorrupt) and one larger than the caller's limit
// (ErrTooLarge). The package does no I/O of its own beyond the reader and
// writer it is given, and starts no goroutines.
package snapshot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Format constants.
const (
	// Magic starts every snapshot file.
	Magic = "CSBACKUP"
	// FormatVersion is the version this package writes and reads.
	FormatVersion uint16 = 1
	// MaxHeaderSize bounds the header JSON.
	MaxHeaderSize = 64 << 10
	// DefaultMaxSize is the default limit on a whole snapshot file.
	DefaultMaxSize = 512 << 20

	prefixLen   = 8 + 2 + 4
	checksumLen = sha256.Size
)

// Sentinel errors; compare with errors.Is.
var (
	// ErrNotSnapshot reports a file that does not start with Magic: not a
	// chainstore snapshot.
	ErrNotSnapshot = errors.New("not a chainstore snapshot")
	// ErrUnsupportedVersion reports a format version this binary does not
	// read.
	ErrUnsupportedVersion = errors.New("unsupported snapshot format version")
	// ErrCorrupt reports a truncated or altered file: bad header,
	// checksum mismatch, trailing bytes.
	ErrCorrupt = errors.New("corrupt snapshot")
	// ErrTooLarge reports a file over the reader's size limit.
	ErrTooLarge = errors.New("snapshot too large")
	// ErrWrongDatacenter reports a snapshot taken in another datacenter.
	ErrWrongDatacenter = errors.New("snapshot is from another datacenter")
)

// Header describes a snapshot.
type Header struct {
	// Datacenter is the datacenter of the cluster the snapshot was taken
	// from; a restore into another datacenter is refused.
	Datacenter string `json:"datacenter"`
	// Node is the name of the server that took it.
	Node string `json:"node"`
	// Index and Term are the Raft index the state reflects and the term
	// of the leader that took it.
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	// Created is when it was taken (UTC).
	Created time.Time `json:"created"`
	// ServerVersion is the version of the stored binary that took it.
	ServerVersion string `json:"server_version,omitempty"`
	// Size is the payload's length in bytes.
	Size int64 `json:"size"`
}

// Validate reports the first missing or invalid field.
func (h Header) Validate() error {
	switch {
	case h.Datacenter == "":
		return errors.New("snapshot header: datacenter is empty")
	case h.Index == 0:
		return errors.New("snapshot header: index is 0")
	case h.Size <= 0:
		return fmt.Errorf("snapshot header: size %d must be positive", h.Size)
	case h.Created.IsZero():
		return errors.New("snapshot header: created time is missing")
	}
	return nil
}

// CheckDatacenter returns an error wrapping ErrWrongDatacenter unless the
// snapshot was taken in dc.
func (h Header) CheckDatacenter(dc string) error {
	if h.Datacenter != dc {
		return fmt.Errorf("%w: taken in %q, this cluster is %q", ErrWrongDatacenter, h.Datacenter, dc)
	}
	return nil
}

// Write writes a complete snapshot: h (whose Size must be len(payload))
// and payload.
func Write(w io.Writer, h Header, payload []byte) error {
	if int64(len(payload)) != h.Size {
		return fmt.Errorf("write snapshot: header size %d, payload %d bytes", h.Size, len(payload))
	}
	if err := h.Validate(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode snapshot header: %w", err)
	}
	if len(hj) > MaxHeaderSize {
		return fmt.Errorf("write snapshot: header of %d bytes exceeds %d", len(hj), MaxHeaderSize)
	}
	sum := sha256.New()
	bw := bufio.NewWriterSize(w, 64<<10)
	mw := io.MultiWriter(bw, sum)
	var pre [prefixLen]byte
	copy(pre[:8], Magic)
	binary.BigEndian.PutUint16(pre[8:10], FormatVersion)
	binary.BigEndian.PutUint32(pre[10:], uint32(len(hj)))
	for _, b := range [][]byte{pre[:], hj, payload} {
		if _, err := mw.Write(b); err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
	}
	if _, err := bw.Write(sum.Sum(nil)); err != nil {
		return fmt.Errorf("write snapshot checksum: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// Encode returns the complete snapshot file as bytes.
func Encode(h Header, payload []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(payload) + 1024)
	if err := Write(&buf, h, payload); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Read reads a complete snapshot of at most maxSize bytes (whole file)
// from r, checks its magic, version, header and checksum, and returns the
// header and the payload. The payload's own format is not checked here
// (fsm.InspectSnapshot does that).
func Read(r io.Reader, maxSize int64) (Header, []byte, error) {
	sum := sha256.New()
	tr := io.TeeReader(r, sum)
	var pre [prefixLen]byte
	if n, err := io.ReadFull(tr, pre[:]); err != nil {
		if n < len(Magic) || string(pre[:len(Magic)]) != Magic {
			return Header{}, nil, fmt.Errorf("%w: the file is %d bytes, shorter than a snapshot header", ErrNotSnapshot, n)
		}
		return Header{}, nil, fmt.Errorf("%w: truncated in the header", ErrCorrupt)
	}
	if string(pre[:8]) != Magic {
		return Header{}, nil, fmt.Errorf("%w: the file starts with %q, not %q", ErrNotSnapshot, pre[:8], Magic)
	}
	if v := binary.BigEndian.Uint16(pre[8:10]); v != FormatVersion {
		return Header{}, nil, fmt.Errorf("%w: version %d, this binary reads %d", ErrUnsupportedVersion, v, FormatVersion)
	}
	hlen := binary.BigEndian.Uint32(pre[10:])
	if hlen == 0 || hlen > MaxHeaderSize {
		return Header{}, nil, fmt.Errorf("%w: header length %d", ErrCorrupt, hlen)
	}
	hj := make([]byte, hlen)
	if _, err := io.ReadFull(tr, hj); err != nil {
		return Header{}, nil, fmt.Errorf("%w: truncated in the header", ErrCorrupt)
	}
	var h Header
	dec := json.NewDecoder(bytes.NewReader(hj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return Header{}, nil, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if err := h.Validate(); err != nil {
		return Header{}, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if total := int64(prefixLen) + int64(hlen) + h.Size + checksumLen; total > maxSize {
		return Header{}, nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, total, maxSize)
	}
	payload := make([]byte, h.Size)
	if _, err := io.ReadFull(tr, payload); err != nil {
		return Header{}, nil, fmt.Errorf("%w: truncated: the header announces %d payload bytes", ErrCorrupt, h.Size)
	}
	want := sum.Sum(nil)
	var got [checksumLen]byte
	if _, err := io.ReadFull(r, got[:]); err != nil {
		return Header{}, nil, fmt.Errorf("%w: truncated: the checksum is missing", ErrCorrupt)
	}
	if !bytes.Equal(got[:], want) {
		return Header{}, nil, fmt.Errorf("%w: SHA-256 checksum mismatch (file %x, computed %x)", ErrCorrupt, got[:8], want[:8])
	}
	var one [1]byte
	if _, err := io.ReadFull(r, one[:]); err == nil {
		return Header{}, nil, fmt.Errorf("%w: trailing bytes after the checksum", ErrCorrupt)
	}
	return h, payload, nil
}
