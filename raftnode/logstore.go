package raftnode

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	gometrics "github.com/armon/go-metrics"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// The Raft log store (DESIGN.md, "Log store"). raft.db (raft-boltdb/v2)
// is always the stable store: term, vote, the vote fence and the kind of
// log store this data dir uses. The log itself is either in raft.db too
// (LogStoreBoltDB, the only kind before issue 12) or in a raft-wal
// directory, DataDir/wal (LogStoreWAL): segment files appended with one
// fsync per batch instead of bbolt's two.
//
// The kind is chosen once, when the data dir is new, from Config.LogStore,
// and recorded in raft.db under logStoreKey. A data dir keeps its kind for
// good: a raft.db that holds Raft state but no kind record is a data dir
// from before the choice existed and keeps its bbolt log.

// LogStoreKind names a Raft log store implementation.
type LogStoreKind string

// The log stores.
const (
	// LogStoreWAL is hashicorp/raft-wal in DataDir/wal.
	LogStoreWAL LogStoreKind = "wal"
	// LogStoreBoltDB is raft-boltdb/v2, in raft.db beside the stable store.
	LogStoreBoltDB LogStoreKind = "boltdb"
)

// DefaultLogStore is DefaultConfig's LogStore (DESIGN.md, "Log store",
// has the measurements behind it).
const DefaultLogStore = LogStoreWAL

// WALDir is the name, inside DataDir, of the raft-wal directory.
const WALDir = "wal"

// logStoreKey is the stable-store key recording the data dir's log store
// kind.
var logStoreKey = []byte("chainstore-log-store")

// raftCurrentTermKey is hashicorp/raft's stable-store key for the current
// term: raft sets it before it writes the first log entry (bootstrap or
// the first AppendEntries of a term), so a store without it holds no log.
var raftCurrentTermKey = []byte("CurrentTerm")

// ParseLogStoreKind parses "wal" or "boltdb".
func ParseLogStoreKind(s string) (LogStoreKind, error) {
	switch k := LogStoreKind(s); k {
	case LogStoreWAL, LogStoreBoltDB:
		return k, nil
	}
	return "", fmt.Errorf("log store %q: want %q or %q: %w", s, LogStoreWAL, LogStoreBoltDB, ErrInvalidConfig)
}

// recordedLogStore returns the kind of log store the data dir whose
// raft.db is db uses. known is false for a data dir with no Raft state
// yet, whose kind is still to be chosen.
func recordedLogStore(db *raftboltdb.BoltStore) (kind LogStoreKind, known bool, err error) {
	v, err := db.Get(logStoreKey)
	switch {
	case err == nil:
		k, perr := ParseLogStoreKind(string(v))
		if perr != nil {
			return "", false, fmt.Errorf("raft.db records an unknown log store %q: %w", v, ErrCorruptState)
		}
		return k, true, nil
	case !errors.Is(err, raftboltdb.ErrKeyNotFound):
		return "", false, fmt.Errorf("read the log store kind from raft.db: %w", err)
	}
	// No record: a data dir from before the choice existed if it holds any
	// Raft state, else a new one.
	last, err := db.LastIndex()
	if err != nil {
		return "", false, fmt.Errorf("read the last log index from raft.db: %w", err)
	}
	term, err := db.GetUint64(raftCurrentTermKey)
	if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return "", false, fmt.Errorf("read the current term from raft.db: %w", err)
	}
	if last > 0 || term > 0 {
		return LogStoreBoltDB, true, nil
	}
	return "", false, nil
}

// openedLog is a data dir's log store, opened.
type openedLog struct {
	kind  LogStoreKind
	store raft.LogStore // the bolt store itself, or the WAL
	wal   *wal.WAL      // nil for LogStoreBoltDB
	// meta is the WAL's metadata store (wal-meta.db). raft-wal v0.4.0's
	// Close leaves it open, and with it the file's lock, so that the same
	// process could never open the WAL again: we close it ourselves.
	meta *metadb.BoltMetaDB
}

// close closes the WAL and its metadata store (the bolt store is closed by
// its owner).
func (l *openedLog) close() error {
	if l.wal == nil {
		return nil
	}
	return errors.Join(l.wal.Close(), l.meta.Close())
}

// openLogStore opens the log store of the data dir dir whose raft.db is db
// (already open). A new data dir gets the kind want, recorded in raft.db
// first; an existing one keeps its own (logged when it differs from want).
func openLogStore(dir string, db *raftboltdb.BoltStore, want LogStoreKind, segmentSize uint64, logger hclog.Logger) (*openedLog, error) {
	kind, known, err := recordedLogStore(db)
	if err != nil {
		return nil, err
	}
	switch {
	case !known:
		kind = want
		if err := db.Set(logStoreKey, []byte(kind)); err != nil {
			return nil, fmt.Errorf("record the log store kind in raft.db: %w", err)
		}
		logger.Info("new data dir: raft log store chosen", "log-store", kind)
	case kind != want && want != "":
		logger.Warn("this data dir keeps the raft log store it was created with; the configured one applies only to new data dirs (docs/operations.md, Raft log store)",
			"log-store", kind, "configured", want)
	}
	if kind == LogStoreBoltDB {
		if known {
			// Make a pre-issue-12 data dir's kind explicit.
			if err := db.Set(logStoreKey, []byte(kind)); err != nil {
				return nil, fmt.Errorf("record the log store kind in raft.db: %w", err)
			}
		}
		return &openedLog{kind: kind, store: db}, nil
	}
	return openWAL(dir, db, segmentSize, logger)
}

// openWAL opens (or creates) DataDir/wal. A missing wal directory is
// created only while raft.db holds no term: once it does, the log may
// hold acknowledged entries, and a node that silently started over with
// an empty log could lose them.
func openWAL(dir string, db *raftboltdb.BoltStore, segmentSize uint64, logger hclog.Logger) (*openedLog, error) {
	walDir := filepath.Join(dir, WALDir)
	_, err := os.Stat(walDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		term, terr := db.GetUint64(raftCurrentTermKey)
		if terr != nil && !errors.Is(terr, raftboltdb.ErrKeyNotFound) {
			return nil, fmt.Errorf("read the current term from raft.db: %w", terr)
		}
		if term > 0 {
			return nil, fmt.Errorf("%s is missing but raft.db records the wal log store and term %d: the log is lost (restore the directory from a backup, or wipe the data dir and let the server join again as a new one; docs/recovery.md): %w",
				walDir, term, ErrCorruptState)
		}
		if err := os.Mkdir(walDir, dirMode); err != nil {
			return nil, fmt.Errorf("create %s: %w", walDir, err)
		}
		if err := syncDir(dir); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("stat %s: %w", walDir, err)
	}
	return openWALDir(walDir, segmentSize, logger)
}

// openWALDir opens the raft-wal in walDir, which must exist. Its files are
// kept 0600 like the rest of the data dir (perms.go): raft-wal creates
// wal-meta.db 0644 (segment files: walVFS).
func openWALDir(walDir string, segmentSize uint64, logger hclog.Logger) (*openedLog, error) {
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(walDir,
		wal.WithLogger(logger.Named("wal")),
		wal.WithMetaStore(meta),
		wal.WithMetricsCollector(walMetrics{}),
		wal.WithSegmentSize(int(segmentSize)),
		wal.WithSegmentFiler(segment.NewFiler(walDir, walVFS{walfs.New()})))
	if err != nil {
		_ = meta.Close()
		return nil, fmt.Errorf("open raft-wal log store %s: %w", walDir, err)
	}
	l := &openedLog{kind: LogStoreWAL, store: w, wal: w, meta: meta}
	if err := TightenPermissions(walDir); err != nil {
		_ = l.close()
		return nil, err
	}
	return l, nil
}

// walMetrics passes raft-wal's counters and gauges to go-metrics' global
// instance as raft_wal_*, where hashicorp/raft's own metrics go (package
// metrics bridges them to Prometheus as chainstore_raft_wal_*). raft-wal's
// GoMetricsCollector would capture the global instance when the WAL opens,
// before the server's metrics sink is installed; this looks it up at every
// call, as hashicorp/raft does.
type walMetrics struct{}

// IncrementCounter implements raft-wal's metrics.Collector.
func (walMetrics) IncrementCounter(name string, delta uint64) {
	gometrics.IncrCounter([]string{"raft", "wal", name}, float32(delta))
}

// SetGauge implements raft-wal's metrics.Collector.
func (walMetrics) SetGauge(name string, val uint64) {
	gometrics.SetGauge([]string{"raft", "wal", name}, float32(val))
}

// walVFS is raft-wal's file system with one change: a new segment file is
// created 0600 (perms.go) and is not preallocated. raft-wal preallocates
// each segment to its full size (64 MiB) with fallocate, so that appends
// later never need new blocks; then a full disk goes unnoticed by the log
// until the next segment cannot be created, and the node carries on while
// its snapshots fail. Without preallocation an append on a full disk fails
// at once and the disk guard fails the node with "no space left on
// device", as it did with bbolt (docs/reliability.md, Disk faults), and
// a 64 MiB test file system can hold a segment. raft-wal's recovery reads
// a segment up to its end or its first zero or torn frame, so a segment
// file that ends where its last write ended is valid.
// [measured] BenchmarkLogStore showed no cost for this (DESIGN.md, "Log store").
type walVFS struct{ types.VFS }

// Create implements types.VFS.
func (v walVFS) Create(dir, name string, _ uint64) (types.WritableFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_RDWR, fileMode)
	if err != nil {
		return nil, err
	}
	return &walFile{File: f, dir: dir}, nil
}

// walFile is a new segment file: its directory is fsynced after the first
// fsync of the file, so that the file's name survives a crash from the
// first acknowledged append on (raft-wal's own file does the same).
type walFile struct {
	*os.File
	dir       string
	dirSynced atomic.Bool
}

// Sync implements types.WritableFile.
func (f *walFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return err
	}
	if f.dirSynced.Load() {
		return nil
	}
	if err := syncDir(f.dir); err != nil {
		return err
	}
	f.dirSynced.Store(true)
	return nil
}

// syncDir fsyncs a directory so that an entry created in it survives a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// copyDirFiles copies the regular files of src into a new directory dst
// (0700), fsyncing each copy: the quarantine copy of a WAL before its log is
// discarded.
func copyDirFiles(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyFileTo(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFileTo(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		_ = out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}
