package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIsRecover(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		args []string
		want bool
	}{
		"flag before":    {[]string{"--data-dir", "d", "recover"}, true},
		"flag after":     {[]string{"recover", "--data-dir", "d"}, true},
		"equals":         {[]string{"--data-dir=d", "recover", "--dry-run"}, true},
		"dir named so":   {[]string{"--data-dir", "recover"}, false},
		"server options": {[]string{"--node", "n1"}, false},
	}
	for name, tc := range cases {
		if got := isRecover(tc.args); got != tc.want {
			t.Errorf("%s: isRecover(%q) = %v, want %v", name, tc.args, got, tc.want)
		}
	}
}

func TestRecoverReportsATruncatedRaftDB(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A bbolt file cut short: a valid-looking size, but no meta page.
	if err := os.WriteFile(filepath.Join(dir, "raft.db"), bytes.Repeat([]byte{1}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := runRecover([]string{"--data-dir", dir, "recover"}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "DAMAGED: "+filepath.Join(dir, "raft.db")) ||
		!strings.Contains(errOut.String(), "damaged raft state") {
		t.Fatalf("recover = %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1 naming raft.db", code, out.String(), errOut.String())
	}
	// Permissions are tightened even so.
	if info, err := os.Stat(filepath.Join(dir, "raft.db")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("raft.db mode after recover = %v, %v; want 0600", info.Mode().Perm(), err)
	}
}

func TestRecoverOnAHealthyDir(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := runRecover([]string{"recover", "--data-dir", t.TempDir()}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "ok: no damage found") {
		t.Fatalf("recover = %d\n%s%s", code, out.String(), errOut.String())
	}
}
