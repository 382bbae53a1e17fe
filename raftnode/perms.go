package raftnode

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// Data dir permissions: the data dir and every directory in it 0700, every
// file 0600. The Raft log, the snapshots and the node ID hold every entry
// and the server's identity; no other local user may read them.
// hashicorp/raft's FileSnapshotStore creates its directories 0755 and its
// files 0644 (before umask), so New tightens an existing dir at start and
// permSnapshotStore tightens each new snapshot once it is complete. While a
// snapshot is being written its files are briefly wider, but they sit
// inside the 0700 snapshots dir, which no other user can enter.
const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// TightenPermissions sets dir and every directory below it to 0700 and
// every regular file to 0600. Symbolic links are left alone (not followed).
func TightenPermissions(dir string) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return chmodIfNot(path, d, dirMode)
		case d.Type().IsRegular():
			return chmodIfNot(path, d, fileMode)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tighten permissions in %s: %w", dir, err)
	}
	return nil
}

func chmodIfNot(path string, d fs.DirEntry, mode fs.FileMode) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	if info.Mode().Perm() == mode {
		return nil
	}
	return os.Chmod(path, mode)
}

// permSnapshotStore is the FileSnapshotStore with each finished snapshot's
// directory and files tightened.
type permSnapshotStore struct {
	*raft.FileSnapshotStore
	dir string // DataDir/snapshots
}

var _ raft.SnapshotStore = (*permSnapshotStore)(nil)

func (s *permSnapshotStore) Create(version raft.SnapshotVersion, index, term uint64,
	configuration raft.Configuration, configurationIndex uint64, trans raft.Transport,
) (raft.SnapshotSink, error) {
	sink, err := s.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &permSink{SnapshotSink: sink, dir: s.dir}, nil
}

type permSink struct {
	raft.SnapshotSink
	dir string
}

// Close finishes the snapshot (the store renames it into place) and then
// tightens it.
func (s *permSink) Close() error {
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	return TightenPermissions(filepath.Join(s.dir, s.ID()))
}
