package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func validConfig() Config {
	cfg := DefaultConfig()
	cfg.NodeName = "n1"
	cfg.NodeID = "0b3c7a52-6d1e-4f7a-9d7e-2f1c5e9a8b10"
	cfg.RaftAddr = "10.0.0.1:8300"
	cfg.GRPCAddr = "10.0.0.1:8502"
	return cfg
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: Validate() = %v", err)
	}
	tests := map[string]struct {
		mod  func(*Config)
		want string // substring of the error
	}{
		"empty node name":        {func(c *Config) { c.NodeName = "" }, "NodeName"},
		"empty node ID":          {func(c *Config) { c.NodeID = "" }, "NodeID"},
		"node ID with spaces":    {func(c *Config) { c.NodeID = " x" }, "NodeID"},
		"empty datacenter":       {func(c *Config) { c.Datacenter = "" }, "Datacenter"},
		"empty label":            {func(c *Config) { c.Label = "" }, "Label"},
		"long label":             {func(c *Config) { c.Label = strings.Repeat("l", 256) }, "Label"},
		"negative expect":        {func(c *Config) { c.BootstrapExpect = -1 }, "BootstrapExpect"},
		"bind addr not an IP":    {func(c *Config) { c.BindAddr = "localhost" }, "BindAddr"},
		"advertise not an IP":    {func(c *Config) { c.AdvertiseAddr = "host" }, "AdvertiseAddr"},
		"bind port out of range": {func(c *Config) { c.BindPort = 70000 }, "BindPort"},
		"advertise port":         {func(c *Config) { c.AdvertisePort = -1 }, "AdvertisePort"},
		"empty join entry":       {func(c *Config) { c.Join = []string{"a:1", " "} }, "Join[1]"},
		"raft addr without port": {func(c *Config) { c.RaftAddr = "10.0.0.1" }, "RaftAddr"},
		"empty grpc addr":        {func(c *Config) { c.GRPCAddr = "" }, "GRPCAddr"},
		"zero reconcile":         {func(c *Config) { c.ReconcileInterval = 0 }, "ReconcileInterval"},
		"zero dead timeout":      {func(c *Config) { c.DeadServerTimeout = 0 }, "DeadServerTimeout"},
		"join retry max < min":   {func(c *Config) { c.JoinRetryMax = time.Millisecond }, "JoinRetryMax"},
		"zero probe interval":    {func(c *Config) { c.Gossip.ProbeInterval = 0 }, "ProbeInterval"},
		"probe timeout too long": {func(c *Config) { c.Gossip.ProbeTimeout = 2 * c.Gossip.ProbeInterval }, "ProbeTimeout"},
		"zero gossip nodes":      {func(c *Config) { c.Gossip.GossipNodes = 0 }, "GossipNodes"},
		"metadata too large":     {func(c *Config) { c.GRPCAddr = strings.Repeat("h", 500) + ":1" }, "metadata"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := validConfig()
			tc.mod(&cfg)
			before := cfg
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
			if diff := cmp.Diff(before, cfg); diff != "" {
				t.Errorf("Validate changed the config (-before +after):\n%s", diff)
			}
		})
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}, newFakeRaft(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New(empty config) = %v, want ErrInvalidConfig", err)
	}
	cfg := testConfig(t, "n1")
	if _, err := New(cfg, nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New(nil raft) = %v, want ErrInvalidConfig", err)
	}
}

func TestDefaultGossipConfigIsLAN(t *testing.T) {
	t.Parallel()
	g := DefaultGossipConfig()
	if g.ProbeInterval != time.Second || g.ProbeTimeout != 500*time.Millisecond || g.SuspicionMult != 4 ||
		g.GossipInterval != 200*time.Millisecond || g.GossipNodes != 3 || g.PushPullInterval != 30*time.Second {
		t.Errorf("DefaultGossipConfig() = %+v, want memberlist's LAN timings", g)
	}
	if err := g.validate(); err != nil {
		t.Errorf("DefaultGossipConfig().validate() = %v", err)
	}
	if err := LocalGossipConfig().validate(); err != nil {
		t.Errorf("LocalGossipConfig().validate() = %v", err)
	}
}
