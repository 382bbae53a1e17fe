package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// This file checks a data dir before Raft opens it (docs/recovery.md):
// bbolt's meta pages against the file size (a truncated raft.db otherwise
// ends in a SIGSEGV that no recover() can catch), every snapshot's CRC
// (damaged ones are moved to a quarantine directory), and whether the log
// still continues the newest usable snapshot. A log that does not (a gap
// between the snapshot and the log's first entry, which makes hashicorp/raft
// panic with "log not found" at start) is discarded, keeping the node ID,
// the term and the vote, and the node is fenced from elections until it has
// caught up from the leader past the last index it had (fence.go).

// DBFile and SnapshotsDir are the names, inside DataDir, of the Raft log
// and stable store and of the snapshot store's directory.
const (
	DBFile       = "raft.db"
	SnapshotsDir = "snapshots"
)

// voteFenceKey is the stable-store key holding the vote fence: the last log
// index this node had before it discarded its log, or 0.
var voteFenceKey = []byte("chainstore-vote-fence")

// Problem is one thing wrong with a data dir, as found by CheckDataDir.
type Problem struct {
	// Path is the damaged file or directory.
	Path string
	// What says what is wrong, in words.
	What string
	// Repair says what the repair does (or did) about it.
	Repair string
	// Fatal problems stop the server from starting until repaired.
	Fatal bool
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s (%s)", p.Path, p.What, p.Repair)
}

// Report is what CheckDataDir found and did.
type Report struct {
	Problems []Problem
	// Quarantine is the directory damaged files were moved to ("" if none).
	Quarantine string
	// FirstIndex, LastIndex are the log's bounds after the check (0, 0 when
	// empty); SnapshotIndex is the newest usable snapshot's index.
	FirstIndex, LastIndex, SnapshotIndex uint64
	// VoteFence is the index this node must reach before it votes again (0:
	// none).
	VoteFence uint64
}

// CheckDataDir checks the Raft state in dir (see the file comment). With
// repair false it only reports; with repair true it tightens permissions,
// moves damaged snapshots to dir/quarantine-<time>/, and discards a log that
// no longer continues the newest usable snapshot (after copying raft.db to
// the quarantine dir), setting the vote fence. A raft.db whose meta pages
// are damaged or which is shorter than they say is never repaired
// automatically: it is reported as fatal (move it aside by hand or with
// `stored recover --discard-log`, docs/recovery.md). The returned error
// wraps ErrCorruptState when a fatal problem remains.
func CheckDataDir(dir string, repair bool, logger hclog.Logger) (Report, error) {
	return checkDataDir(dir, repair, logger)
}

func checkDataDir(dir string, repair bool, logger hclog.Logger) (rep Report, err error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if _, err := os.Stat(dir); err != nil {
		return rep, fmt.Errorf("check data dir: %w", err)
	}
	if repair {
		if err := TightenPermissions(dir); err != nil {
			return rep, err
		}
	}
	q := &quarantine{dir: dir, logger: logger}

	// 1. raft.db's meta pages.
	dbPath := filepath.Join(dir, DBFile)
	dbErr := checkBoltFile(dbPath)
	if dbErr != nil {
		rep.Problems = append(rep.Problems, Problem{Path: dbPath, What: dbErr.Error(), Fatal: true,
			Repair: "not repairable here: restore raft.db from a backup, or wipe this server's data dir and let it join again as a new server (docs/recovery.md)"})
	}

	// 2. Snapshots: newest first; a damaged one is quarantined.
	snapIndex, snapProblems, err := checkSnapshots(dir, repair, q, logger)
	if err != nil {
		return rep, err
	}
	rep.Problems = append(rep.Problems, snapProblems...)
	rep.SnapshotIndex = snapIndex

	// 3. The log against the newest usable snapshot.
	if dbErr == nil {
		if err := checkLogContinuity(dir, repair, q, &rep); err != nil {
			return rep, err
		}
	}
	rep.Quarantine = q.created
	for _, p := range rep.Problems {
		if p.Fatal {
			return rep, fmt.Errorf("%s: %w", p, ErrCorruptState)
		}
	}
	return rep, nil
}

// checkLogContinuity opens raft.db and compares the log's first index with
// the newest usable snapshot.
func checkLogContinuity(dir string, repair bool, q *quarantine, rep *Report) error {
	dbPath := filepath.Join(dir, DBFile)
	if _, err := os.Stat(dbPath); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	store, err := openBolt(dbPath)
	if err != nil {
		rep.Problems = append(rep.Problems, Problem{Path: dbPath, What: "cannot open: " + err.Error(), Fatal: true,
			Repair: "not repaired: another process may hold it (stop it), else restore it from a backup or wipe the data dir (docs/recovery.md)"})
		return nil
	}
	defer func() { _ = store.Close() }()
	log, logPath := openCheckedLog(dir, store, rep)
	if log == nil {
		return nil
	}
	defer func() { _ = log.close() }()
	first, err1 := log.store.FirstIndex()
	last, err2 := log.store.LastIndex()
	fence, err3 := store.GetUint64(voteFenceKey)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("read log bounds of %s: %w", logPath, err)
	}
	if err3 == nil {
		rep.VoteFence = fence
	}
	rep.FirstIndex, rep.LastIndex = first, last
	if last == 0 || first <= rep.SnapshotIndex+1 {
		return nil
	}
	p := Problem{Path: logPath, Fatal: true,
		What: fmt.Sprintf("the log starts at index %d but the newest usable snapshot ends at %d: entries %d-%d are gone (hashicorp/raft would panic with \"log not found\")",
			first, rep.SnapshotIndex, rep.SnapshotIndex+1, first-1)}
	if !repair {
		p.Repair = "repair discards the log (keeping node ID, term and vote) and the node catches up from the leader"
		rep.Problems = append(rep.Problems, p)
		return nil
	}
	if log.wal != nil {
		err = q.copyDir(logPath)
	} else {
		err = q.copyFile(dbPath)
	}
	if err != nil {
		return err
	}
	if err := log.store.DeleteRange(first, last); err != nil {
		return fmt.Errorf("discard log entries %d-%d of %s: %w", first, last, logPath, err)
	}
	newFence := max(last, rep.VoteFence)
	if err := store.SetUint64(voteFenceKey, newFence); err != nil {
		return fmt.Errorf("set vote fence in %s: %w", dbPath, err)
	}
	rep.VoteFence = newFence
	rep.FirstIndex, rep.LastIndex = 0, 0
	p.Fatal = false
	p.Repair = fmt.Sprintf("discarded entries %d-%d (a copy of %s is in %s); term and vote kept; no votes until this node has caught up past index %d",
		first, last, filepath.Base(logPath), q.path(), newFence)
	rep.Problems = append(rep.Problems, p)
	return nil
}

// openCheckedLog opens the log of the data dir whose raft.db is db, for
// checkLogContinuity: db itself for a bbolt log, else the WAL. It returns a
// nil log when there is none to check (a new data dir); a WAL directory
// that is missing although raft.db records a term is a fatal problem.
func openCheckedLog(dir string, db *raftboltdb.BoltStore, rep *Report) (log *openedLog, path string) {
	dbPath := filepath.Join(dir, DBFile)
	kind, known, err := recordedLogStore(db)
	if err != nil {
		rep.Problems = append(rep.Problems, Problem{Path: dbPath, What: err.Error(), Fatal: true,
			Repair: "not repairable here: restore raft.db from a backup, or wipe this server's data dir and let it join again as a new server (docs/recovery.md)"})
		return nil, ""
	}
	if !known {
		return nil, ""
	}
	if kind == LogStoreBoltDB {
		return &openedLog{kind: kind, store: db}, dbPath
	}
	walDir := filepath.Join(dir, WALDir)
	if _, err := os.Stat(walDir); errors.Is(err, fs.ErrNotExist) {
		term, _ := db.GetUint64(raftCurrentTermKey)
		if term == 0 {
			return nil, "" // created at the next start
		}
		rep.Problems = append(rep.Problems, Problem{Path: walDir, Fatal: true,
			What:   fmt.Sprintf("missing, but raft.db records the wal log store and term %d: the log is lost", term),
			Repair: "not repairable here: restore it from a backup, or wipe this server's data dir and let it join again as a new server (docs/recovery.md)"})
		return nil, ""
	}
	l, err := openWALDir(walDir, 64<<20, hclog.NewNullLogger()) // the size limit applies to new segments only
	if err != nil {
		rep.Problems = append(rep.Problems, Problem{Path: walDir, What: "cannot open: " + err.Error(), Fatal: true,
			Repair: "not repaired: restore it from a backup, or wipe this server's data dir and let it join again as a new server (docs/recovery.md)"})
		return nil, ""
	}
	return l, walDir
}

// checkSnapshots opens every snapshot (FileSnapshotStore.Open verifies the
// CRC of state.bin against meta.json) and returns the newest usable one's
// index. Damaged ones are quarantined when repair is set.
func checkSnapshots(dir string, repair bool, q *quarantine, logger hclog.Logger) (uint64, []Problem, error) {
	snapDir := filepath.Join(dir, SnapshotsDir)
	if _, err := os.Stat(snapDir); errors.Is(err, fs.ErrNotExist) {
		return 0, nil, nil
	}
	entries, err := os.ReadDir(snapDir)
	if err != nil {
		return 0, nil, fmt.Errorf("read snapshot dir: %w", err)
	}
	store, err := raft.NewFileSnapshotStoreWithLogger(dir, 1<<20, hclog.NewNullLogger())
	if err != nil {
		return 0, nil, fmt.Errorf("open snapshot store in %q: %w", dir, err)
	}
	good := map[string]bool{}
	metas, err := store.List() // skips (and logs) snapshots whose meta.json is unreadable
	if err != nil {
		return 0, nil, fmt.Errorf("list snapshots in %q: %w", snapDir, err)
	}
	var problems []Problem
	var newest uint64
	for _, m := range metas {
		_, rc, err := store.Open(m.ID)
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			err = errors.Join(err, rc.Close())
		}
		if err == nil {
			good[m.ID] = true
			newest = max(newest, m.Index)
			continue
		}
		problems = append(problems, snapshotProblem(filepath.Join(snapDir, m.ID), "damaged: "+err.Error()))
		good[m.ID] = true // handled
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || good[name] || strings.HasSuffix(name, ".tmp") {
			continue // .tmp: an unfinished snapshot, which Raft ignores and reaps
		}
		problems = append(problems, snapshotProblem(filepath.Join(snapDir, name), "meta.json missing or unreadable"))
	}
	for i := range problems {
		if repair {
			if err := q.move(problems[i].Path); err != nil {
				return 0, nil, err
			}
			problems[i].Repair = "moved to " + q.path()
			logger.Warn("quarantined damaged snapshot", "snapshot", problems[i].Path, "problem", problems[i].What, "quarantine", q.path())
		}
	}
	return newest, problems, nil
}

func snapshotProblem(path, what string) Problem {
	return Problem{Path: path, What: what, Repair: "repair moves it to a quarantine-<time> directory"}
}

// openBolt opens the bolt store, turning a panic of bbolt (it asserts on
// some damaged pages) into an error wrapping ErrCorruptState. Faults from
// pages past the end of the file cannot be recovered; checkBoltFile runs
// first to rule those out.
func openBolt(path string) (store *raftboltdb.BoltStore, err error) {
	defer func() {
		if r := recover(); r != nil {
			store, err = nil, fmt.Errorf("bbolt panicked opening %s: %v: %w", path, r, ErrCorruptState)
		}
	}()
	return raftboltdb.New(boltOptions(path))
}

// --- bbolt meta pages ----------------------------------------------------------

const (
	boltMagic   = 0xED0CDAED
	boltVersion = 2
	// boltMetaSize is the meta struct after the 16-byte page header: magic,
	// version, page size, flags (4 x 4), root bucket (16), freelist, high
	// water mark, txid (3 x 8), checksum (8: FNV-64a of the bytes before).
	boltMetaSize = 64
)

type boltMeta struct {
	pageSize uint32
	pgid     uint64 // high water mark: pages [0, pgid) are in use
	txid     uint64
}

// checkBoltFile reads raft.db's two meta pages and checks that the newer
// valid one's high water mark fits in the file. A missing file is fine (a
// new node). This is what bbolt cannot do safely itself: it maps the file
// and, when pages it references lie beyond the end, faults (SIGSEGV/SIGBUS,
// not a recoverable panic) while rebuilding its free list.
func checkBoltFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return errors.New("empty file (0 bytes)")
	}
	m0, err0 := readBoltMeta(f, 0)
	var m1 boltMeta
	var err1 error
	if err0 == nil {
		m1, err1 = readBoltMeta(f, int64(m0.pageSize))
	} else {
		// Page 0 is damaged: try the usual page sizes for page 1.
		err1 = err0
		for _, ps := range []int64{4096, 8192, 16384, 65536} {
			if m1, err1 = readBoltMeta(f, ps); err1 == nil {
				break
			}
		}
	}
	var m boltMeta
	switch {
	case err0 != nil && err1 != nil:
		return fmt.Errorf("not a valid bbolt file: no readable meta page: %w", errors.Join(err0, err1))
	case err0 != nil:
		m = m1
	case err1 != nil:
		m = m0
	case m1.txid > m0.txid:
		m = m1
	default:
		m = m0
	}
	if need := int64(m.pgid) * int64(m.pageSize); need > size {
		return fmt.Errorf("truncated: %d bytes, but its meta page says it uses %d pages of %d bytes (%d bytes)",
			size, m.pgid, m.pageSize, need)
	}
	return nil
}

func readBoltMeta(f *os.File, off int64) (boltMeta, error) {
	buf := make([]byte, 16+boltMetaSize)
	if _, err := f.ReadAt(buf, off); err != nil {
		return boltMeta{}, fmt.Errorf("read meta page at %d: %w", off, err)
	}
	meta := buf[16:]
	le := binary.LittleEndian
	if le.Uint32(meta[0:]) != boltMagic {
		return boltMeta{}, fmt.Errorf("meta page at %d: bad magic", off)
	}
	if le.Uint32(meta[4:]) != boltVersion {
		return boltMeta{}, fmt.Errorf("meta page at %d: unsupported version %d", off, le.Uint32(meta[4:]))
	}
	h := fnv.New64a()
	_, _ = h.Write(meta[:56])
	if h.Sum64() != le.Uint64(meta[56:]) {
		return boltMeta{}, fmt.Errorf("meta page at %d: checksum mismatch", off)
	}
	m := boltMeta{pageSize: le.Uint32(meta[8:]), pgid: le.Uint64(meta[40:]), txid: le.Uint64(meta[48:])}
	if m.pageSize < 512 || m.pageSize&(m.pageSize-1) != 0 {
		return boltMeta{}, fmt.Errorf("meta page at %d: bad page size %d", off, m.pageSize)
	}
	return m, nil
}

// --- quarantine -----------------------------------------------------------------

// quarantine moves damaged files into dir/quarantine-<UTC time>/, created
// (0700) on first use.
type quarantine struct {
	dir     string
	logger  hclog.Logger
	created string
}

func (q *quarantine) path() string { return q.created }

func (q *quarantine) ensure() error {
	if q.created != "" {
		return nil
	}
	p := filepath.Join(q.dir, "quarantine-"+time.Now().UTC().Format("20060102T150405.000Z"))
	if err := os.MkdirAll(p, 0o700); err != nil {
		return fmt.Errorf("create quarantine dir: %w", err)
	}
	q.created = p
	return nil
}

func (q *quarantine) move(path string) error {
	if err := q.ensure(); err != nil {
		return err
	}
	dst := filepath.Join(q.created, filepath.Base(path))
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("move %s to quarantine: %w", path, err)
	}
	return nil
}

// copyDir copies the files of the directory path into the quarantine dir.
func (q *quarantine) copyDir(path string) error {
	if err := q.ensure(); err != nil {
		return err
	}
	return copyDirFiles(path, filepath.Join(q.created, filepath.Base(path)))
}

func (q *quarantine) copyFile(path string) error {
	if err := q.ensure(); err != nil {
		return err
	}
	src, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("copy %s to quarantine: %w", path, err)
	}
	defer func() { _ = src.Close() }()
	dst, err := os.OpenFile(filepath.Join(q.created, filepath.Base(path)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("copy %s to quarantine: %w", path, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return fmt.Errorf("copy %s to quarantine: %w", path, err)
	}
	if err := dst.Sync(); err != nil {
		_ = dst.Close()
		return fmt.Errorf("copy %s to quarantine: %w", path, err)
	}
	return dst.Close()
}
