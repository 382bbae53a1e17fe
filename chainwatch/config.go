package chainwatch

import (
	"errors"
	"fmt"
	"time"

	"github.com/chainstore/chainstore/chain"
)

// Config configures a Hub. Build it with DefaultConfig and change fields;
// it is immutable once passed to New.
type Config struct {
	// Datacenter is this server's datacenter: the compile datacenter of a
	// ChainKey without one, and the UseInDatacenter of every compile.
	Datacenter string
	// TrustDomain is the trust domain targets' SNI and Name are built from.
	TrustDomain string
	// Namespace is the namespace chains are evaluated in.
	Namespace string
	// WarmTTL is how long a chain with no watcher stays cached after its
	// last watcher left. It is not recompiled meanwhile; it is marked
	// stale when a change touches it and recompiled by the next
	// subscriber. Reconnect storms within the TTL cost no compile.
	WarmTTL time.Duration
	// MaxChains caps the chains (watched or warm) the hub tracks.
	MaxChains int
	// MaxChainBytes caps the size of a compiled chain's JSON; a larger
	// chain is published as a compile error, so it never exceeds the
	// message size agents accept.
	MaxChainBytes int
}

// DefaultConfig returns the production defaults (datacenter dc1, the
// compiler's validation trust domain, a 10 s warm TTL).
func DefaultConfig() Config {
	return Config{
		Datacenter:    chain.DefaultDatacenter,
		TrustDomain:   chain.ValidationTrustDomain,
		Namespace:     chain.DefaultNamespace,
		WarmTTL:       10 * time.Second,
		MaxChains:     100_000,
		MaxChainBytes: 8 << 20,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Datacenter == "":
		return errors.New("Datacenter must be set") //nolint:staticcheck // ST1005: the message starts with the field name
	case c.TrustDomain == "":
		return errors.New("TrustDomain must be set")
	case c.Namespace == "":
		return errors.New("Namespace must be set") //nolint:staticcheck // ST1005: the message starts with the field name
	case c.WarmTTL <= 0:
		return fmt.Errorf("WarmTTL must be positive, got %s", c.WarmTTL)
	case c.MaxChains <= 0:
		return fmt.Errorf("MaxChains must be positive, got %d", c.MaxChains)
	case c.MaxChainBytes <= 0:
		return fmt.Errorf("MaxChainBytes must be positive, got %d", c.MaxChainBytes)
	}
	return nil
}

// WatcherConfig configures a Watcher (one agent stream).
type WatcherConfig struct {
	// MaxSubscriptions caps the open subscriptions of one Watcher.
	MaxSubscriptions int
	// ProgressInterval is how long a Watcher may stay silent before it
	// emits a Progress event; each interval gets up to ProgressJitter of
	// it added at random, so streams opened together do not tick together.
	ProgressInterval time.Duration
	// ProgressJitter is the fraction (0 to 1) of random jitter.
	ProgressJitter float64
	// ResumeWait bounds how long a subscription that resumes from an
	// index this server has not applied yet waits for it; then Add
	// returns ErrBehind.
	ResumeWait time.Duration
}

// DefaultWatcherConfig returns the production defaults.
func DefaultWatcherConfig() WatcherConfig {
	return WatcherConfig{
		MaxSubscriptions: 1024,
		ProgressInterval: 10 * time.Second,
		ProgressJitter:   0.1,
		ResumeWait:       5 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c WatcherConfig) Validate() error {
	switch {
	case c.MaxSubscriptions <= 0:
		return fmt.Errorf("MaxSubscriptions must be positive, got %d", c.MaxSubscriptions)
	case c.ProgressInterval <= 0:
		return fmt.Errorf("ProgressInterval must be positive, got %s", c.ProgressInterval)
	case c.ProgressJitter < 0 || c.ProgressJitter > 1:
		return fmt.Errorf("ProgressJitter must be within [0, 1], got %g", c.ProgressJitter)
	case c.ResumeWait <= 0:
		return fmt.Errorf("ResumeWait must be positive, got %s", c.ResumeWait)
	}
	return nil
}

// Option sets an optional knob of a Hub.
type Option func(*options)

type options struct {
	onCompile func(key ChainKey)
}

// WithCompileHook makes the hub call fn (on its Run goroutine) after each
// compile of a chain, published or not. Tests and benchmarks count
// compiles with it; fn must be fast and must not call the hub.
func WithCompileHook(fn func(key ChainKey)) Option {
	return func(o *options) { o.onCompile = fn }
}
