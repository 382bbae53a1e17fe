package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/internal/failpoint"
)

// Snapshot format, version 1 (all multi-byte header integers big-endian;
// "uvarint" is encoding/binary's unsigned varint; strings are a uvarint
// length followed by the bytes):
//
//	header:  magic "CSFSMSNP" (8 bytes), schema version (uint16),
//	         applied Raft index (uint64)
//	records: type (1 byte), payload length (uvarint), payload
//	  1 entry:     CreateIndex (uvarint), ModifyIndex (uvarint),
//	               canonical entry JSON (chain.EncodeEntry) to the end
//	  2 tombstone: kind, name, deletion index (uvarint)
//	  3 index:     kind, list index (uvarint)
//	  4 instance:  a catalog instance with its health and indexes
//	               (encoding/json of catalog.Stored)
//	  5 catalog index: service name (or the services-list row), index
//	               (uvarint)
//	  6 acl policy: encoding/json of ACLPolicy
//	  7 acl token:  encoding/json of ACLToken (the secret's hash only)
//	  8 acl meta:   name ("bootstrap" or "index"), value (uvarint)
//	  9 reap floor: the highest deletion index of a reaped tombstone
//	               (uvarint); written only when tombstone GC has run, at
//	               most once
//	  255 end:     entry, tombstone and index record counts (uvarints),
//	               then, when the catalog or the ACL state is not empty,
//	               instance and catalog-index record counts (uvarints),
//	               then, when the ACL state is not empty, acl policy,
//	               token and meta record counts, then CRC-32C
//	               (Castagnoli, big-endian uint32) of every byte before the
//	               end record's type byte
//
// A snapshot without catalog records is byte-for-byte what a binary
// without the catalog wrote, and both read each other's; likewise for the
// ACL records.
//
// Nothing may follow the end record. Entries are written in key order, so
// equal states produce identical snapshots. A missing end record, a count
// or checksum mismatch, an unknown record type or trailing bytes make the
// whole snapshot invalid.
const (
	snapshotMagic   = "CSFSMSNP"
	snapshotVersion = 1

	recEntry     byte = 1
	recTombstone byte = 2
	recIndex     byte = 3
	recInstance  byte = 4
	recCatIndex  byte = 5
	recACLPolicy byte = 6
	recACLToken  byte = 7
	recACLMeta   byte = 8
	recReapFloor byte = 9
	recEnd       byte = 0xFF

	// maxRecordLen bounds one record's payload, so garbage cannot make
	// Restore allocate without limit. Entries are a few KB.
	maxRecordLen = 16 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Snapshot implements raft.FSM. It only opens a read transaction (a frozen
// tree), so it is O(1); Persist streams it while Apply continues.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{view: f.Store().View()}, nil
}

// fsmSnapshot implements raft.FSMSnapshot over a frozen View.
type fsmSnapshot struct {
	view *View
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.view); err != nil {
		if cerr := sink.Cancel(); cerr != nil {
			return fmt.Errorf("persist snapshot: %w (cancel sink: %w)", err, cerr)
		}
		return fmt.Errorf("persist snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("close snapshot sink: %w", err)
	}
	return nil
}

// Release implements raft.FSMSnapshot. A memdb read transaction holds no
// resources beyond the memory of the frozen tree.
func (s *fsmSnapshot) Release() {}

// writeSnapshot writes v in the format above.
func writeSnapshot(out io.Writer, v *View) error {
	bw := bufio.NewWriterSize(out, 64<<10)
	crc := crc32.New(crcTable)
	w := io.MultiWriter(bw, crc)

	var hdr [8 + 2 + 8]byte
	copy(hdr[:8], snapshotMagic)
	binary.BigEndian.PutUint16(hdr[8:10], snapshotVersion)
	binary.BigEndian.PutUint64(hdr[10:], v.Index())
	if _, err := w.Write(hdr[:]); err != nil {
		return fmt.Errorf("write header: %w", err)
	}

	var rec []byte // reused record buffer
	var nEntries, nTombs, nIndexes uint64
	it, err := v.txn.Get(tableEntries, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		se := raw.(*StoredEntry)
		js, err := chain.EncodeEntry(se.Entry)
		if err != nil {
			return fmt.Errorf("encode entry %s: %w", se.key, err)
		}
		var p []byte
		p = binary.AppendUvarint(p, se.CreateIndex)
		p = binary.AppendUvarint(p, se.ModifyIndex)
		rec = appendRecord(rec[:0], recEntry, p, js)
		if _, err := w.Write(rec); err != nil {
			return fmt.Errorf("write entry %s: %w", se.key, err)
		}
		nEntries++
	}
	it, err = v.txn.Get(tableTombstones, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		t := raw.(*tombstone)
		p := appendString(nil, string(t.Key.Kind))
		p = appendString(p, t.Key.Name)
		p = binary.AppendUvarint(p, t.Index)
		rec = appendRecord(rec[:0], recTombstone, p, nil)
		if _, err := w.Write(rec); err != nil {
			return fmt.Errorf("write tombstone %s: %w", t.Key, err)
		}
		nTombs++
	}
	it, err = v.txn.Get(tableIndex, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*indexRow)
		p := appendString(nil, r.Name)
		p = binary.AppendUvarint(p, r.Value)
		rec = appendRecord(rec[:0], recIndex, p, nil)
		if _, err := w.Write(rec); err != nil {
			return fmt.Errorf("write index %s: %w", r.Name, err)
		}
		nIndexes++
	}

	nInstances, nCatIndexes, err := writeCatalogRecords(w, v, rec)
	if err != nil {
		return err
	}
	nACL, err := writeACLRecords(w, v, rec)
	if err != nil {
		return err
	}
	hasACL := nACL != [3]uint64{}
	if floor := v.ReapFloor(); floor > 0 {
		rec = appendRecord(rec[:0], recReapFloor, binary.AppendUvarint(nil, floor), nil)
		if _, err := w.Write(rec); err != nil {
			return fmt.Errorf("write reap floor: %w", err)
		}
	}
	if err := failpoint.Eval(failpoint.FSMSnapshotPersist); err != nil {
		return err
	}

	// The end record goes to bw only: the checksum covers what precedes it.
	var p []byte
	p = binary.AppendUvarint(p, nEntries)
	p = binary.AppendUvarint(p, nTombs)
	p = binary.AppendUvarint(p, nIndexes)
	if nInstances+nCatIndexes > 0 || hasACL {
		p = binary.AppendUvarint(p, nInstances)
		p = binary.AppendUvarint(p, nCatIndexes)
	}
	if hasACL {
		for _, n := range nACL {
			p = binary.AppendUvarint(p, n)
		}
	}
	p = binary.BigEndian.AppendUint32(p, crc.Sum32())
	if _, err := bw.Write(appendRecord(rec[:0], recEnd, p, nil)); err != nil {
		return fmt.Errorf("write end record: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("flush snapshot: %w", err)
	}
	return nil
}

// appendRecord appends type, uvarint(len(a)+len(b)), a, b.
func appendRecord(dst []byte, typ byte, a, b []byte) []byte {
	dst = append(dst, typ)
	dst = binary.AppendUvarint(dst, uint64(len(a)+len(b)))
	dst = append(dst, a...)
	return append(dst, b...)
}

// Restore implements raft.FSM. It decodes the whole snapshot into a new
// store first; only if that fully succeeds does it swap the store under
// storeMu, set the applied index to the snapshot's, publish a Reset
// change-set and close the old store's AbandonCh. On any error the current
// store is untouched.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer func() { _ = rc.Close() }()
	s, idx, err := readSnapshot(rc)
	if err == nil {
		err = failpoint.Eval(failpoint.FSMSnapshotRestore)
	}
	if err != nil {
		f.logger.Error("snapshot restore failed; keeping current state", "error", err)
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.storeMu.Lock()
	old := f.store
	f.store = s
	f.storeMu.Unlock()

	f.setApplied(idx)
	f.feed.publish(ChangeSet{Index: idx, Reset: true})
	old.abandon()
	f.logger.Info("restored snapshot", "index", idx)
	return nil
}

// snapReader reads the snapshot and checksums every byte it consumes.
type snapReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	buf []byte
}

func (sr *snapReader) readByte() (byte, error) {
	b, err := sr.r.ReadByte()
	if err != nil {
		return 0, err
	}
	sr.crc.Write([]byte{b})
	return b, nil
}

// ReadByte implements io.ByteReader for binary.ReadUvarint.
func (sr *snapReader) ReadByte() (byte, error) { return sr.readByte() }

// readFull reads n bytes into an internal buffer valid until the next call.
func (sr *snapReader) readFull(n int) ([]byte, error) {
	if cap(sr.buf) < n {
		sr.buf = make([]byte, n)
	}
	b := sr.buf[:n]
	if _, err := io.ReadFull(sr.r, b); err != nil {
		return nil, err
	}
	sr.crc.Write(b)
	return b, nil
}

// badSnapshot wraps ErrBadSnapshot with a description.
func badSnapshot(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrBadSnapshot)
}

// readErr turns a read error into ErrBadSnapshot when it means truncation.
func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return badSnapshot("read %s: truncated", what)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

// readSnapshot decodes a complete snapshot into a new store. It returns
// the store and the snapshot's applied index. It never panics on bad
// input.
func readSnapshot(r io.Reader) (*Store, uint64, error) {
	sr := &snapReader{r: bufio.NewReaderSize(r, 64<<10), crc: crc32.New(crcTable)}
	hdr, err := sr.readFull(8 + 2 + 8)
	if err != nil {
		return nil, 0, readErr("header", err)
	}
	if string(hdr[:8]) != snapshotMagic {
		return nil, 0, badSnapshot("bad magic %q", hdr[:8])
	}
	if v := binary.BigEndian.Uint16(hdr[8:10]); v != snapshotVersion {
		return nil, 0, fmt.Errorf("snapshot schema version %d (want %d): %w", v, snapshotVersion, ErrUnsupportedSnapshotVersion)
	}
	index := binary.BigEndian.Uint64(hdr[10:])

	s := newStore()
	w := newWriter(s)
	defer w.txn.Abort() // no-op after Commit
	rs := &restoreState{w: w}
	for rec := 0; ; rec++ {
		sum := sr.crc.Sum32()
		typ, err := sr.readByte()
		if err != nil {
			return nil, 0, readErr(fmt.Sprintf("record %d type (no end record)", rec), err)
		}
		n, err := binary.ReadUvarint(sr)
		if err != nil {
			return nil, 0, readErr(fmt.Sprintf("record %d length", rec), err)
		}
		if n > maxRecordLen {
			return nil, 0, badSnapshot("record %d: length %d exceeds limit", rec, n)
		}
		p, err := sr.readFull(int(n))
		if err != nil {
			return nil, 0, readErr(fmt.Sprintf("record %d payload", rec), err)
		}
		switch typ {
		case recEntry:
			err = rs.entry(p)
		case recTombstone:
			err = rs.tombstone(p)
		case recIndex:
			err = rs.index(p)
		case recInstance:
			err = rs.instance(p)
		case recCatIndex:
			err = rs.catalogIndex(p)
		case recACLPolicy:
			err = rs.aclPolicy(p)
		case recACLToken:
			err = rs.aclToken(p)
		case recACLMeta:
			err = rs.aclMeta(p)
		case recReapFloor:
			err = rs.reapFloor(p)
		case recEnd:
			if err := rs.end(p, sum); err != nil {
				return nil, 0, fmt.Errorf("record %d: %w", rec, err)
			}
			if _, err := sr.r.ReadByte(); !errors.Is(err, io.EOF) {
				if err != nil {
					return nil, 0, fmt.Errorf("read after end record: %w", err)
				}
				return nil, 0, badSnapshot("trailing bytes after end record")
			}
			w.setApplied(index)
			w.txn.Commit()
			return s, index, nil
		default:
			err = badSnapshot("unknown record type %d", typ)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("record %d: %w", rec, err)
		}
	}
}

// restoreState inserts decoded records and checks their consistency.
type restoreState struct {
	w                          *writer
	nEntries, nTombs, nIndexes uint64
	nInstances, nCatIndexes    uint64
	nACL                       [3]uint64 // acl policies, tokens, meta rows
}

func (rs *restoreState) entry(p []byte) error {
	create, n := binary.Uvarint(p)
	if n <= 0 {
		return badSnapshot("entry: bad CreateIndex")
	}
	p = p[n:]
	modify, n := binary.Uvarint(p)
	if n <= 0 {
		return badSnapshot("entry: bad ModifyIndex")
	}
	p = p[n:]
	if create == 0 || modify < create {
		return badSnapshot("entry: bad indexes create=%d modify=%d", create, modify)
	}
	e, err := chain.DecodeCanonical(p)
	if err != nil {
		return fmt.Errorf("entry: %w: %w", ErrBadSnapshot, err)
	}
	if e == nil {
		return badSnapshot("entry: nil")
	}
	se := newStoredEntry(e, create, modify)
	if se.key.Name == "" {
		return badSnapshot("entry of kind %s without name", se.key.Kind)
	}
	v := rs.w.view()
	if v.entry(se.key) != nil {
		return badSnapshot("duplicate entry %s", se.key)
	}
	if v.KeyIndex(se.key) != 0 {
		return badSnapshot("entry %s also has a tombstone", se.key)
	}
	must(rs.w.txn.Insert(tableEntries, se))
	rs.nEntries++
	return nil
}

func (rs *restoreState) tombstone(p []byte) error {
	kind, p, ok := readString(p)
	if !ok {
		return badSnapshot("tombstone: bad kind")
	}
	name, p, ok := readString(p)
	if !ok {
		return badSnapshot("tombstone: bad name")
	}
	idx, n := binary.Uvarint(p)
	if n <= 0 || n != len(p) || idx == 0 {
		return badSnapshot("tombstone: bad index")
	}
	k := chain.KeyOf(chain.Kind(kind), name)
	if _, err := chain.ParseKind(string(k.Kind)); err != nil || k.Name == "" || k.Kind != chain.Kind(kind) || k.Name != name {
		return badSnapshot("tombstone: bad key %q/%q", kind, name)
	}
	if rs.w.view().KeyIndex(k) != 0 {
		return badSnapshot("tombstone %s duplicates an entry or tombstone", k)
	}
	must(rs.w.txn.Insert(tableTombstones, &tombstone{Key: k, Index: idx}))
	rs.nTombs++
	return nil
}

func (rs *restoreState) reapFloor(p []byte) error {
	v, n := binary.Uvarint(p)
	if n <= 0 || n != len(p) || v == 0 {
		return badSnapshot("reap floor: bad value")
	}
	if rs.w.view().ReapFloor() != 0 {
		return badSnapshot("reap floor: duplicate")
	}
	must(rs.w.txn.Insert(tableMeta, &indexRow{Name: metaReapFloor, Value: v}))
	return nil
}

func (rs *restoreState) index(p []byte) error {
	name, p, ok := readString(p)
	if !ok {
		return badSnapshot("index: bad name")
	}
	val, n := binary.Uvarint(p)
	if n <= 0 || n != len(p) {
		return badSnapshot("index %q: bad value", name)
	}
	if _, err := chain.ParseKind(name); err != nil {
		return badSnapshot("index: unknown kind %q", name)
	}
	dup, err := rs.w.txn.First(tableIndex, indexID, name)
	must(err)
	if dup != nil {
		return badSnapshot("index %q: duplicate", name)
	}
	must(rs.w.txn.Insert(tableIndex, &indexRow{Name: name, Value: val}))
	rs.nIndexes++
	return nil
}

func (rs *restoreState) end(p []byte, sum uint32) error {
	var counts [8]uint64
	nCounts := 0
	for len(p) > 4 {
		if nCounts == len(counts) {
			return badSnapshot("end: too many counts")
		}
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return badSnapshot("end: bad count")
		}
		counts[nCounts] = v
		nCounts++
		p = p[n:]
	}
	if nCounts != 3 && nCounts != 5 && nCounts != 8 {
		return badSnapshot("end: %d counts, want 3, 5 or 8", nCounts)
	}
	if len(p) != 4 {
		return badSnapshot("end: bad checksum length %d", len(p))
	}
	if want := [8]uint64{rs.nEntries, rs.nTombs, rs.nIndexes, rs.nInstances, rs.nCatIndexes, rs.nACL[0], rs.nACL[1], rs.nACL[2]}; counts != want {
		return badSnapshot("end: counts %v, read %v", counts[:nCounts], want[:nCounts])
	}
	if got := binary.BigEndian.Uint32(p); got != sum {
		return badSnapshot("end: checksum %08x, computed %08x", got, sum)
	}
	return nil
}
