package api

import (
	"testing"
)

func TestChainWatchConfigValidate(t *testing.T) {
	t.Parallel()
	base := DefaultChainWatchConfig()
	base.Chains = []WatchedChain{{Service: "web"}}
	if err := base.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	tests := map[string]func(*ChainWatchConfig){
		"no address":   func(c *ChainWatchConfig) { c.Addrs = nil },
		"bad address":  func(c *ChainWatchConfig) { c.Addrs = []string{"nohost"} },
		"no chain":     func(c *ChainWatchConfig) { c.Chains = nil },
		"no service":   func(c *ChainWatchConfig) { c.Chains = []WatchedChain{{}} },
		"backoff":      func(c *ChainWatchConfig) { c.MaxBackoff = c.MinBackoff / 2 },
		"idle timeout": func(c *ChainWatchConfig) { c.IdleTimeout = 0 },
	}
	for name, mod := range tests {
		c := base
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", name)
		}
	}
}

func TestChainEventJSONLine(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		ev   ChainEvent
		want string
	}{
		"chain": {
			ev:   ChainEvent{Service: "web", Index: 7, Hash: "abc", Chain: []byte(`{"ServiceName":"web"}`), Server: "x:1"},
			want: `{"service":"web","index":7,"hash":"abc","chain":{"ServiceName":"web"}}`,
		},
		"compile error": {
			ev:   ChainEvent{Service: "web", Index: 8, Hash: "def", Error: "boom", Chain: []byte(`{}`)},
			want: `{"service":"web","index":8,"hash":"def","error":"boom"}`,
		},
	}
	for name, tc := range tests {
		got, err := tc.ev.JSONLine()
		if err != nil {
			t.Fatalf("%s: JSONLine: %v", name, err)
		}
		if string(got) != tc.want {
			t.Errorf("%s: JSONLine() = %s, want %s", name, got, tc.want)
		}
	}
}
