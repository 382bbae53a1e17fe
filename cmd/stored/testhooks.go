package main

// Test-only flags, used by the fault-injection suite (test/chaos) and this
// package's tests. Every one of them is named --test-* and must never be
// set in production. They are registered like any other flag, so they
// parse as usual, but `stored -h` does not list them (parseFlags hides
// the testFlagPrefix names from the usage text):
//
//	--test-raft-dial-map "raftaddr=proxyaddr,..."  dial each listed peer's
//	    Raft address through another address (a per-link TCP proxy); it
//	    feeds raftnode.Config.DialOverride.
//	--test-apply-journal FILE  append one JSON line per command this node's
//	    FSM applies (index, term, op, key, entry, result and, for the last
//	    command of a batch, the store hash) through the fsm journal hook.
//	    Every line is one write(2), so a SIGKILL loses nothing the FSM
//	    applied before the hook ran.
//	--test-raft-tuning "key=value,..."  shrink Raft settings so faults play
//	    out in seconds: heartbeat, election, lease, commit (durations),
//	    snapshot-interval (duration), snapshot-threshold, trailing-logs,
//	    wal-segment-size (counts; the last in bytes), disk-stall (the
//	    raftnode DiskStallTimeout).
//	--test-disk-stall-file FILE  while FILE exists, every Raft log write
//	    blocks (a stalled disk; it goes on once FILE is removed). Feeds
//	    raftnode.Config.LogWriteHook.
//	--test-failpoints-file FILE  on SIGUSR1, replace the enabled failpoints
//	    with those in FILE (failpoints.go; CHAINSTORE_FAILPOINTS enables
//	    them at start-up).

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/server"
)

// testFlagPrefix starts the name of every test-only flag.
const testFlagPrefix = "test-"

// testFlags holds the raw values of the --test-* flags.
type testFlags struct {
	dialMap string
	journal string
	tuning  string
	stall   string
	fpFile  string
}

// registerTestFlags adds the --test-* flags to fs.
func registerTestFlags(fs *flag.FlagSet) *testFlags {
	t := &testFlags{}
	fs.StringVar(&t.dialMap, "test-raft-dial-map", "", "TEST ONLY: comma-separated raftaddr=dialaddr overrides for outgoing Raft connections")
	fs.StringVar(&t.journal, "test-apply-journal", "", "TEST ONLY: append a JSON line per applied command to this file")
	fs.StringVar(&t.tuning, "test-raft-tuning", "", "TEST ONLY: comma-separated Raft settings (heartbeat, election, lease, commit, snapshot-interval, snapshot-threshold, trailing-logs, wal-segment-size, disk-stall)")
	fs.StringVar(&t.stall, "test-disk-stall-file", "", "TEST ONLY: Raft log writes block while this file exists")
	fs.StringVar(&t.fpFile, "test-failpoints-file", "", "TEST ONLY: on SIGUSR1, enable the failpoints listed in this file")
	return t
}

// apply installs the hooks the flags ask for into cfg. The journal file
// stays open for the life of the process.
func (t *testFlags) apply(cfg *server.Config) error {
	if err := setupFailpoints(t.fpFile); err != nil {
		return err
	}
	if t.dialMap != "" {
		m, err := parseDialMap(t.dialMap)
		if err != nil {
			return fmt.Errorf("--test-raft-dial-map: %w", err)
		}
		cfg.Raft.DialOverride = func(addr string) string { return m[addr] }
	}
	if t.tuning != "" {
		if err := applyRaftTuning(cfg, t.tuning); err != nil {
			return fmt.Errorf("--test-raft-tuning: %w", err)
		}
	}
	if t.stall != "" {
		cfg.Raft.LogWriteHook = stallWhileExists(t.stall)
	}
	if t.journal != "" {
		f, err := os.OpenFile(t.journal, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("--test-apply-journal: %w", err)
		}
		cfg.FSMOptions = append(cfg.FSMOptions, journalOption(f, cfg.NodeName))
	}
	return nil
}

// stallWhileExists returns a log write hook that blocks while path
// exists, checking every 10 ms: a disk that stops answering, then recovers.
func stallWhileExists(path string) func() error {
	return func() error {
		for {
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				return nil
			}
			time.Sleep(10 * time.Millisecond) // the stall itself
		}
	}
}

func parseDialMap(s string) (map[string]string, error) {
	m := make(map[string]string)
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		from, to, ok := strings.Cut(pair, "=")
		if !ok || from == "" || to == "" {
			return nil, fmt.Errorf("%q: want raftaddr=dialaddr", pair)
		}
		m[from] = to
	}
	return m, nil
}

func applyRaftTuning(cfg *server.Config, s string) error {
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return fmt.Errorf("%q: want key=value", pair)
		}
		var dst *time.Duration
		var count *uint64
		switch k {
		case "heartbeat":
			dst = &cfg.Raft.HeartbeatTimeout
		case "election":
			dst = &cfg.Raft.ElectionTimeout
		case "lease":
			dst = &cfg.Raft.LeaderLeaseTimeout
		case "commit":
			dst = &cfg.Raft.CommitTimeout
		case "disk-stall":
			dst = &cfg.Raft.DiskStallTimeout
		case "snapshot-interval":
			dst = &cfg.Raft.SnapshotInterval
		case "snapshot-threshold":
			count = &cfg.Raft.SnapshotThreshold
		case "trailing-logs":
			count = &cfg.Raft.TrailingLogs
		case "wal-segment-size":
			count = &cfg.Raft.WALSegmentSize
		default:
			return fmt.Errorf("unknown setting %q", k)
		}
		if dst != nil {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			*dst = d
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		*count = n
	}
	return nil
}

// journalLine is one apply-journal record; the JSON shape is what
// test/chaos reads (chaos.JournalRecord).
type journalLine struct {
	Node     string          `json:"node"`
	Type     string          `json:"type"`
	Index    uint64          `json:"index"`
	Term     uint64          `json:"term"`
	Op       string          `json:"op"`
	Key      chain.Key       `json:"key"`
	Entry    json.RawMessage `json:"entry,omitempty"`
	CASIndex uint64          `json:"cas_index,omitempty"`
	Applied  bool            `json:"applied"`
	Err      string          `json:"err,omitempty"`
	Hash     string          `json:"hash,omitempty"`
}

// journalOption returns an fsm.Option installing the apply-journal hook.
// The hook runs on the FSM goroutine after each batch has committed, so
// the store is the state after the batch: its hash is recorded on the
// batch's last command only (the one whose index the store reflects).
func journalOption(w *os.File, node string) fsm.Option {
	var mu sync.Mutex // the FSM calls the hook from one goroutine; this is belt and braces
	return func(f *fsm.FSM) {
		fsm.WithApplyJournal(func(index, term uint64, cmd fsm.Command, res fsm.ApplyResult) {
			line := journalLine{Node: node, Type: "apply", Index: index, Term: term,
				Op: strings.TrimSuffix(cmd.Op.String(), "+ignorable"), Key: cmd.Key, CASIndex: cmd.CASIndex, Applied: res.Applied}
			if res.Err != nil {
				line.Err = res.Err.Error()
			}
			if cmd.Entry != nil {
				line.Key = chain.KeyOf(cmd.Entry.GetKind(), cmd.Entry.GetName())
				if raw, err := chain.EncodeEntry(cmd.Entry); err == nil {
					line.Entry = raw
				}
			}
			if st := f.Store(); st.View().Index() == index {
				line.Hash = st.Hash()
			}
			b, err := json.Marshal(line)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if _, err := w.Write(append(b, '\n')); err != nil && !errors.Is(err, os.ErrClosed) {
				fmt.Fprintln(os.Stderr, "stored: write apply journal:", err)
			}
		})(f)
	}
}
