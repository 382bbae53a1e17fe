package raftnode

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func validConfig() Config {
	c := DefaultConfig()
	c.NodeID = "n1"
	c.DataDir = "/tmp/n1"
	c.BindAddr = "127.0.0.1:8300"
	return c
}

func TestDefaultConfig(t *testing.T) {
	got := DefaultConfig()
	want := Config{
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		MaxAppendEntries:   128,
		BatchApplyCh:       true,
		SnapshotInterval:   30 * time.Second,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
		LogCacheSize:       512,
		LogStore:           LogStoreWAL, // DESIGN.md, "Log store"
		WALSegmentSize:     64 << 20,
		ApplyTimeout:       10 * time.Second,
		ReadIndexTimeout:   5 * time.Second,
		TransportTimeout:   10 * time.Second,
		TransportMaxPool:   3,
		DiskStallTimeout:   2 * time.Second, // 2x ElectionTimeout (docs/reliability.md, G9)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b func(string) string) bool { return a == nil && b == nil })); diff != "" {
		t.Errorf("DefaultConfig() (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := map[string]struct {
		mutate  func(*Config)
		wantErr []string // substrings; nil means valid
	}{
		"defaults with identity":    {mutate: func(*Config) {}},
		"port zero bind":            {mutate: func(c *Config) { c.BindAddr = "127.0.0.1:0" }},
		"wildcard bind + advertise": {mutate: func(c *Config) { c.BindAddr = "0.0.0.0:8300"; c.AdvertiseAddr = "10.0.0.1:8300" }},
		"hostname advertise":        {mutate: func(c *Config) { c.AdvertiseAddr = "server-1.internal:8300" }},
		"empty identity": {
			mutate:  func(c *Config) { c.NodeID, c.DataDir = "", "" },
			wantErr: []string{"NodeID is empty", "DataDir is empty"},
		},
		"bad bind": {
			mutate:  func(c *Config) { c.BindAddr = "localhost" },
			wantErr: []string{"BindAddr"},
		},
		"bad bind port": {
			mutate:  func(c *Config) { c.BindAddr = "127.0.0.1:99999" },
			wantErr: []string{"BindAddr"},
		},
		"wildcard bind without advertise": {
			mutate:  func(c *Config) { c.BindAddr = "0.0.0.0:8300" },
			wantErr: []string{"AdvertiseAddr is empty"},
		},
		"advertise port zero": {
			mutate:  func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" },
			wantErr: []string{"AdvertiseAddr"},
		},
		"advertise wildcard": {
			mutate:  func(c *Config) { c.AdvertiseAddr = "[::]:8300" },
			wantErr: []string{"AdvertiseAddr"},
		},
		"election below heartbeat": {
			mutate:  func(c *Config) { c.ElectionTimeout = 500 * time.Millisecond },
			wantErr: []string{"ElectionTimeout"},
		},
		"disk stall timeout below election": {
			mutate:  func(c *Config) { c.DiskStallTimeout = 500 * time.Millisecond },
			wantErr: []string{"DiskStallTimeout"},
		},
		"lease above heartbeat": {
			mutate:  func(c *Config) { c.LeaderLeaseTimeout = 2 * time.Second },
			wantErr: []string{"LeaderLeaseTimeout"},
		},
		"tiny timeouts": {
			mutate: func(c *Config) {
				c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = time.Millisecond, time.Millisecond, time.Millisecond
				c.CommitTimeout, c.SnapshotInterval = 0, 0
			},
			wantErr: []string{"HeartbeatTimeout", "LeaderLeaseTimeout", "CommitTimeout", "SnapshotInterval"},
		},
		"out of range counts": {
			mutate: func(c *Config) {
				c.MaxAppendEntries, c.SnapshotThreshold, c.SnapshotRetain, c.LogCacheSize = 2000, 0, 0, -1
				c.TransportMaxPool = 0
			},
			wantErr: []string{"MaxAppendEntries", "SnapshotThreshold", "SnapshotRetain", "LogCacheSize", "TransportMaxPool"},
		},
		"zero durations": {
			mutate:  func(c *Config) { c.ApplyTimeout, c.ReadIndexTimeout, c.TransportTimeout = 0, 0, 0 },
			wantErr: []string{"ApplyTimeout", "ReadIndexTimeout", "TransportTimeout"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q, want it to mention %q", err, want)
				}
			}
		})
	}
}

func TestValidateDoesNotDefault(t *testing.T) {
	var c Config
	if err := c.Validate(); err == nil {
		t.Fatalf("zero Config validated")
	}
	if diff := cmp.Diff(Config{}, c, cmp.Comparer(func(a, b func(string) string) bool { return a == nil && b == nil })); diff != "" {
		t.Errorf("Validate changed the config (-want +got):\n%s", diff)
	}
}

func TestBoltOptionsNeverSkipFsync(t *testing.T) {
	o := boltOptions("/x/raft.db")
	if o.NoSync || o.BoltOptions == nil || o.BoltOptions.NoSync {
		t.Errorf("bolt options skip fsync: %+v", o)
	}
	if !o.BoltOptions.NoFreelistSync {
		t.Errorf("NoFreelistSync is off")
	}
	if o.BoltOptions.Timeout <= 0 {
		t.Errorf("no file lock timeout: a second opener would hang")
	}
}

func TestLeaderQueue(t *testing.T) {
	cases := map[string]struct {
		pushes []bool
		want   []bool
	}{
		"starts from not-leader": {pushes: []bool{false}, want: nil},
		"alternates":             {pushes: []bool{true, false, true}, want: []bool{true, false, true}},
		"drops repeats":          {pushes: []bool{true, true, false, false}, want: []bool{true, false}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var q leaderQueue
			for _, v := range tc.pushes {
				q.push(v)
			}
			if diff := cmp.Diff(tc.want, q.items); diff != "" {
				t.Errorf("queue (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("overflow drops the oldest pair", func(t *testing.T) {
		var q leaderQueue
		for i := range leaderQueueMax + 3 {
			q.push(i%2 == 0)
		}
		if len(q.items) > leaderQueueMax || len(q.items) == 0 {
			t.Fatalf("queue length %d, want 1..%d", len(q.items), leaderQueueMax)
		}
		if !q.items[0] {
			t.Errorf("head after overflow = false, want true (alternation from not-leader)")
		}
		for i := 1; i < len(q.items); i++ {
			if q.items[i] == q.items[i-1] {
				t.Fatalf("queue not alternating at %d: %v", i, q.items)
			}
		}
		// leaderQueueMax+3 pushes alternating from true end on true.
		if last := q.items[len(q.items)-1]; !last {
			t.Errorf("final state = false, want true")
		}
		out, head := q.next(make(chan bool))
		if out == nil || !head {
			t.Errorf("next() = (%v, %v), want a channel and true", out, head)
		}
		q.pop()
		if len(q.items) == 0 || q.items[0] {
			t.Errorf("after pop head = %v, want false", q.items)
		}
	})
}
