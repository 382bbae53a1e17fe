package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/chainstore/chainstore/cluster"
)

// TestNonLoopbackNeedsTLSAndGossipKey: a server bound to a non-loopback
// address without TLS and a gossip key refuses to start, in one line that
// names what is missing and --insecure; loopback and --insecure start.
func TestNonLoopbackNeedsTLSAndGossipKey(t *testing.T) {
	t.Parallel()
	key := "Hkc5xtV4Wx6FMwOagaiboAzlPvJQYm/zC+Hufml5kC0="
	cases := map[string]struct {
		mutate  func(*Config)
		refused string // "" when allowed
	}{
		"loopback":                  {mutate: func(*Config) {}},
		"all interfaces":            {mutate: func(c *Config) { c.GRPCAddr = "0.0.0.0:8502" }, refused: "TLS (--ca-file, --cert-file, --key-file) and a gossip key (--encrypt) not set"},
		"advertised elsewhere":      {mutate: func(c *Config) { c.RaftAdvertise = "10.0.0.1:8300" }, refused: "10.0.0.1:8300 is not loopback"},
		"gossip key but no TLS":     {mutate: func(c *Config) { c.GossipAddr, c.Encrypt = "10.0.0.1:8301", key }, refused: "TLS (--ca-file, --cert-file, --key-file) not set"},
		"all interfaces, insecure":  {mutate: func(c *Config) { c.GRPCAddr, c.Insecure = "0.0.0.0:8502", true }},
		"localhost name is allowed": {mutate: func(c *Config) { c.GRPCAddr = "localhost:8502" }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.DataDir = t.TempDir()
			tc.mutate(&cfg)
			_, err := setupSecurity(cfg)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("setupSecurity = %v, want allowed", err)
			case tc.refused != "" && !errors.Is(err, ErrInsecure):
				t.Fatalf("setupSecurity = %v, want ErrInsecure", err)
			case tc.refused != "" && (!strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), "--insecure") || strings.Contains(err.Error(), "\n")):
				t.Fatalf("setupSecurity = %q, want one line naming %q and --insecure", err, tc.refused)
			}
		})
	}
	// A bad key is refused whatever the address.
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Encrypt = t.TempDir(), "bm90LWEta2V5"
	if _, err := setupSecurity(cfg); !errors.Is(err, cluster.ErrKeyring) {
		t.Fatalf("setupSecurity with a 9-byte key = %v, want cluster.ErrKeyring", err)
	}
}
