package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/chainstore/chainstore/raftnode"
)

// isRecover reports whether the command line asks for the recover
// subcommand: the word "recover" where a flag's value cannot be.
func isRecover(args []string) bool {
	for i, a := range args {
		if a == "recover" && (i == 0 || !takesValue(args[i-1])) {
			return true
		}
	}
	return false
}

// takesValue reports whether arg is a flag whose value is the next argument.
func takesValue(arg string) bool {
	if !strings.HasPrefix(arg, "-") || strings.Contains(arg, "=") {
		return false
	}
	switch strings.TrimLeft(arg, "-") {
	case "log-json", "dry-run", "h", "help":
		return false
	}
	return true
}

// runRecover is `stored [--data-dir D] recover [--data-dir D] [--dry-run]`:
// it checks a stopped server's data dir, names what is damaged and repairs
// what can be repaired (docs/recovery.md). It returns the exit code: 0 when
// the dir is usable (healthy or repaired), 1 when damage remains, 2 for a
// usage error.
func runRecover(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stored recover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", "data", "the data dir to check (the server must be stopped)")
	dry := fs.Bool("dry-run", false, "only report; change nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: stored --data-dir DIR recover [--dry-run]")
		fmt.Fprintln(stderr, "Checks a stopped server's data dir: raft.db, snapshots, the log against the newest snapshot, permissions.")
		fmt.Fprintln(stderr, "Damaged snapshots move to DIR/quarantine-<time>/; a log that no longer continues the newest")
		fmt.Fprintln(stderr, "snapshot is discarded (copy kept), keeping node ID, term and vote. See docs/recovery.md.")
		fs.PrintDefaults()
	}
	// Flags may come before and after the word "recover".
	var rest []string
	for i, a := range args {
		if a == "recover" && (i == 0 || !takesValue(args[i-1])) {
			rest = append(append(rest, args[:i]...), args[i+1:]...)
			break
		}
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "stored recover: unexpected arguments %v\n", fs.Args())
		return 2
	}
	rep, err := raftnode.CheckDataDir(*dir, !*dry, nil)
	for _, p := range rep.Problems {
		state := "repaired"
		switch {
		case p.Fatal:
			state = "DAMAGED"
		case *dry:
			state = "repairable"
		}
		fmt.Fprintf(stdout, "%s: %s\n  %s\n  -> %s\n", state, p.Path, p.What, p.Repair)
	}
	if rep.Quarantine != "" {
		fmt.Fprintf(stdout, "quarantined files are in %s\n", rep.Quarantine)
	}
	fmt.Fprintf(stdout, "log %d-%d, newest usable snapshot at %d", rep.FirstIndex, rep.LastIndex, rep.SnapshotIndex)
	if rep.VoteFence > 0 {
		fmt.Fprintf(stdout, ", no votes until caught up past %d", rep.VoteFence)
	}
	fmt.Fprintln(stdout)
	if err != nil {
		fmt.Fprintln(stderr, "stored recover:", err)
		return 1
	}
	if len(rep.Problems) == 0 {
		fmt.Fprintln(stdout, "ok: no damage found")
	}
	return 0
}
