package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/server"
)

func TestTestFlags(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		args    []string
		wantErr bool
		// check reports what is wrong with the config apply produced.
		check func(cfg server.Config) error
	}{
		"none": {check: func(cfg server.Config) error {
			if cfg.Raft.DialOverride != nil || cfg.Raft.LogWriteHook != nil || len(cfg.FSMOptions) != 0 {
				return errors.New("hooks installed without flags")
			}
			return nil
		}},
		"dial map": {args: []string{"--test-raft-dial-map", "127.0.0.1:1=127.0.0.1:9, 127.0.0.1:2=127.0.0.1:8"}, check: func(cfg server.Config) error {
			var errs []error
			for in, want := range map[string]string{"127.0.0.1:1": "127.0.0.1:9", "127.0.0.1:2": "127.0.0.1:8", "127.0.0.1:3": ""} {
				if got := cfg.Raft.DialOverride(in); got != want {
					errs = append(errs, fmt.Errorf("DialOverride(%s) = %q, want %q", in, got, want))
				}
			}
			return errors.Join(errs...)
		}},
		"bad dial map": {args: []string{"--test-raft-dial-map", "127.0.0.1:1"}, wantErr: true},
		"tuning": {args: []string{"--test-raft-tuning", "heartbeat=300ms,election=300ms,lease=150ms,snapshot-threshold=64,trailing-logs=32,snapshot-interval=1s,disk-stall=700ms"}, check: func(cfg server.Config) error {
			r := cfg.Raft
			got := []any{r.HeartbeatTimeout, r.ElectionTimeout, r.LeaderLeaseTimeout, r.SnapshotThreshold, r.TrailingLogs, r.SnapshotInterval, r.DiskStallTimeout}
			want := []any{300 * time.Millisecond, 300 * time.Millisecond, 150 * time.Millisecond, uint64(64), uint64(32), time.Second, 700 * time.Millisecond}
			if diff := cmp.Diff(want, got); diff != "" {
				return fmt.Errorf("tuning mismatch (-want +got):\n%s", diff)
			}
			return nil
		}},
		"disk stall file": {args: []string{"--test-disk-stall-file", "/nonexistent/stall"}, check: func(cfg server.Config) error {
			// The file does not exist: a write goes through at once.
			if cfg.Raft.LogWriteHook == nil || cfg.Raft.LogWriteHook() != nil {
				return errors.New("LogWriteHook not installed, or it failed with no stall file")
			}
			return nil
		}},
		"bad tuning key":   {args: []string{"--test-raft-tuning", "speed=11"}, wantErr: true},
		"bad tuning value": {args: []string{"--test-raft-tuning", "heartbeat=soon"}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			tf := registerTestFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg := server.DefaultConfig()
			err := tf.apply(&cfg)
			if tc.wantErr {
				if err == nil {
					t.Fatal("apply succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if err := tc.check(cfg); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestApplyJournalHook(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	tf := registerTestFlags(fs)
	if err := fs.Parse([]string{"--test-apply-journal", path}); err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.NodeName = "n7"
	if err := tf.apply(&cfg); err != nil {
		t.Fatal(err)
	}
	f := fsm.New(nil, cfg.FSMOptions...)
	entry := &chain.ServiceConfigEntry{Kind: chain.KindServiceDefaults, Name: "web", Protocol: "http", Meta: map[string]string{"chaos-value": "c1-1"}}
	key := chain.KeyOf(chain.KindServiceDefaults, "web")
	cmds := []fsm.Command{
		{Op: fsm.OpUpsert, Entry: entry},
		{Op: fsm.OpUpsertCAS, Entry: entry, CASIndex: 99}, // fails: index mismatch
		{Op: fsm.OpDelete, Key: key},
	}
	var logs []*raft.Log
	for i, c := range cmds {
		data, err := fsm.EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: uint64(10 + i), Term: 2, Type: raft.LogCommand, Data: data})
	}
	f.ApplyBatch(logs[:2]) // one batch: only its last record carries the hash
	f.ApplyBatch(logs[2:])

	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = file.Close() }()
	var got []journalLine
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var l journalLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, l)
	}
	if len(got) != 3 {
		t.Fatalf("journal has %d lines, want 3", len(got))
	}
	for i, l := range got {
		if l.Node != "n7" || l.Type != "apply" || l.Index != uint64(10+i) || l.Term != 2 || l.Key != key {
			t.Errorf("line %d = %+v", i, l)
		}
	}
	if got[0].Op != "upsert" || !got[0].Applied || len(got[0].Entry) == 0 || got[0].Hash != "" {
		t.Errorf("upsert line = %+v (want applied, entry, no hash: not last of its batch)", got[0])
	}
	if got[1].Op != "upsert-cas" || got[1].Applied || got[1].CASIndex != 99 || got[1].Hash == "" {
		t.Errorf("cas line = %+v (want not applied, cas 99, hash)", got[1])
	}
	if got[2].Op != "delete" || !got[2].Applied || got[2].Hash != f.Store().Hash() {
		t.Errorf("delete line = %+v (want applied, hash of the final store)", got[2])
	}
	e, err := chain.DecodeCanonical(got[0].Entry)
	if err != nil || !chain.EqualEntries(e, entry) {
		t.Errorf("journal entry %s decodes to %v, %v", got[0].Entry, e, err)
	}
}
