package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-uuid"
)

// NodeIDFile is the name of the file, inside the data dir, that holds the
// server's Raft ID.
const NodeIDFile = "node-id"

// LoadOrCreateNodeID returns the server ID stored in dataDir/node-id,
// creating dataDir and the file with a new random UUID on first start. The
// new file is written to a temporary name, fsync'd, renamed into place and
// the directory fsync'd, so a crash leaves either no file or a complete one.
// An existing file that does not hold a UUID (surrounding whitespace is
// allowed) is rejected with ErrCorruptNodeID and left as it is: a server
// must never silently change its identity.
func LoadOrCreateNodeID(dataDir string) (string, error) {
	if dataDir == "" {
		return "", fmt.Errorf("load node ID: empty data dir: %w", ErrInvalidConfig)
	}
	path := filepath.Join(dataDir, NodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		return parseNodeID(path, b)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read node ID: %w", err)
	}
	id, err := uuid.GenerateUUID()
	if err != nil {
		return "", fmt.Errorf("generate node ID: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	if err := writeFileSync(dataDir, NodeIDFile, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("write node ID: %w", err)
	}
	return id, nil
}

func parseNodeID(path string, b []byte) (string, error) {
	id := strings.TrimSpace(string(b))
	if _, err := uuid.ParseUUID(id); err != nil {
		return "", fmt.Errorf("%s holds %q, not a UUID (restore or delete it; deleting gives this server a new identity): %w",
			path, truncate(id, 64), ErrCorruptNodeID)
	}
	return id, nil
}

// writeFileSync atomically creates dir/name with data (temp file, fsync,
// rename, fsync dir).
func writeFileSync(dir, name string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }() // read-only handle: only Sync's error matters
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
