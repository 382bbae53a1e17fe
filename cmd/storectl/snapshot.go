package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/cmd/internal/cli"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/snapshot"
	"github.com/chainstore/chainstore/version"
)

// snapshotCommands are the backup commands (snapshot save|restore|inspect)
// and version.
func snapshotCommands() commandTable {
	return commandTable{
		{Name: "snapshot", Summary: "back up and restore the cluster's state: snapshot save|restore|inspect FILE", Run: groupRunner("snapshot", snapshotSubcommands)},
		{Name: "version", Summary: "print the version of storectl and of the server at --addr", Run: runVersion},
	}
}

func snapshotSubcommands() commandTable {
	return commandTable{
		{Name: "save", Summary: "write a consistent snapshot of the cluster to FILE: save [--stale] FILE", Run: runSnapshotSave},
		{Name: "restore", Summary: "restore the cluster to the snapshot in FILE, through Raft on every server: restore FILE", Run: runSnapshotRestore},
		{Name: "inspect", Summary: "check FILE's checksum and print its header (offline): inspect [--json] FILE", Run: runSnapshotInspect},
	}
}

// snapshotFlags parses the connection flags and one FILE argument.
func snapshotFlags(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*clientFlags, string, bool) {
	fs, cf := newFlagSet("snapshot "+name, stderr)
	cf.timeout = 5 * time.Minute
	if f := fs.Lookup("timeout"); f != nil {
		f.DefValue = "5m0s"
		_ = f.Value.Set("5m")
	}
	if extra != nil {
		extra(fs)
	}
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return nil, "", false
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "usage: storectl snapshot %s FILE\n", name)
		return nil, "", false
	}
	return cf, pos[0], true
}

func runSnapshotSave(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var stale bool
	cf, path, ok := snapshotFlags("save", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&stale, "stale", false, "take the snapshot from the server reached, without a leader")
	})
	if !ok {
		return 2
	}
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "Error saving snapshot: %v\n", err)
		return 1
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	var buf bytes.Buffer
	if _, err := c.SaveSnapshot(ctx, &buf, stale); err != nil {
		fmt.Fprintf(stderr, "Error saving snapshot: %s\n", api.ErrorText(err))
		return 1
	}
	// Check what arrived before it replaces anything on disk.
	h, _, err := snapshot.Read(bytes.NewReader(buf.Bytes()), snapshot.DefaultMaxSize)
	if err != nil {
		fmt.Fprintf(stderr, "Error saving snapshot: the server sent an invalid file: %v\n", err)
		return 1
	}
	if err := writeFileAtomic(path, buf.Bytes()); err != nil {
		fmt.Fprintf(stderr, "Error saving snapshot: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Saved snapshot to %s: index %d, datacenter %s, %d bytes\n", path, h.Index, h.Datacenter, buf.Len())
	return 0
}

// writeFileAtomic writes b to a temporary file next to path, syncs it and
// renames it over path.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func runSnapshotRestore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf, path, ok := snapshotFlags("restore", args, stderr, nil)
	if !ok {
		return 2
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "Error restoring snapshot: %v\n", err)
		return 1
	}
	defer func() { _ = f.Close() }()
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "Error restoring snapshot: %v\n", err)
		return 1
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	resp, err := c.RestoreSnapshot(ctx, f)
	if err != nil {
		fmt.Fprintf(stderr, "Error restoring snapshot: %s\n", api.ErrorText(err))
		return 1
	}
	fmt.Fprintf(stdout, "Restored snapshot %s (index %d, datacenter %s, taken %s); the restored state is at index %d\n",
		path, resp.GetSnapshotIndex(), resp.GetDatacenter(), resp.GetCreated().AsTime().Format(time.RFC3339), resp.GetRestoredIndex())
	return 0
}

func runSnapshotInspect(_ context.Context, args []string, stdout, stderr io.Writer) int {
	// The connection flags are accepted (global flags come first) but
	// unused: inspect reads only the file.
	fs, _ := newFlagSet("snapshot inspect", stderr)
	asJSON := cli.JSONFlag(fs)
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: storectl snapshot inspect [--json] FILE")
		return 2
	}
	f, err := os.Open(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "Error inspecting snapshot: %v\n", err)
		return 1
	}
	defer func() { _ = f.Close() }()
	h, _, err := snapshot.Read(f, snapshot.DefaultMaxSize)
	if err != nil {
		fmt.Fprintf(stderr, "Error inspecting snapshot %s: %v\n", pos[0], err)
		return 1
	}
	if *asJSON {
		return cli.PrintJSON(stdout, stderr, h)
	}
	rows := [][]string{
		{"Datacenter", h.Datacenter},
		{"Node", h.Node},
		{"Index", fmt.Sprint(h.Index)},
		{"Term", fmt.Sprint(h.Term)},
		{"Created", h.Created.Format(time.RFC3339)},
		{"Server version", h.ServerVersion},
		{"Payload bytes", fmt.Sprint(h.Size)},
		{"Checksum", "SHA-256 OK"},
	}
	out := tableOutput(2, rows)
	return out.print(stdout, stderr)
}

// runVersion prints storectl's version and, when a server answers, the
// server's.
func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("version", stderr)
	if _, err := cli.ParseInterspersed(fs, args); err != nil {
		return 2
	}
	fmt.Fprintf(stdout, "Client: %s\n", version.String())
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "Error reading the server version: %v\n", err)
		return 1
	}
	defer func() { _ = c.Close() }()
	st, err := c.Status(ctx, &chainstorev1.StatusRequest{})
	if err != nil {
		fmt.Fprintf(stderr, "Error reading the server version: %s\n", api.ErrorText(err))
		return 1
	}
	fmt.Fprintf(stdout, "Server: %s (%s)\n", st.GetServerVersion(), st.GetNode())
	return 0
}
