package xdsserver

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Config configures a Server. Build it with DefaultConfig and change
// fields; it is immutable once passed to New.
type Config struct {
	// VersionPrefix starts every version_info the caches send. Empty (the
	// default) derives one from the node name and the start time
	// ("<node>.<start in base-36 ms>."), so versions never collide across
	// the servers of a cluster or the restarts of one server (§6.3 of
	// docs/xds.md): a client that reconnects elsewhere always gets a full
	// answer.
	VersionPrefix string
	// MaxChains caps the listener names (chains) the server follows. A
	// name requested beyond the cap is refused (logged, and recorded in the
	// client's status); the client then waits for a resource that never
	// comes.
	MaxChains int
	// SubscribeTimeout bounds one subscription to the chain hub (one
	// compile), so a slow hub never stalls the publisher for long.
	SubscribeTimeout time.Duration
	// RetryInterval is how long the publisher waits before it retries a
	// subscription that failed for a reason that may pass (the hub's chain
	// cap, a timeout).
	RetryInterval time.Duration
	// ReconnectHold bounds how long the answer to a client that
	// (re)connects with listeners or clusters this server has not
	// published yet is held back, waiting for them (see guard). A name
	// still missing then is answered as missing.
	ReconnectHold time.Duration
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		MaxChains:        4096,
		SubscribeTimeout: 10 * time.Second,
		RetryInterval:    time.Second,
		ReconnectHold:    5 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case len(c.VersionPrefix) > 128:
		return fmt.Errorf("VersionPrefix longer than 128 bytes (%d)", len(c.VersionPrefix))
	case c.MaxChains <= 0:
		return fmt.Errorf("MaxChains must be positive, got %d", c.MaxChains)
	case c.SubscribeTimeout <= 0:
		return fmt.Errorf("SubscribeTimeout must be positive, got %s", c.SubscribeTimeout)
	case c.RetryInterval <= 0:
		return fmt.Errorf("RetryInterval must be positive, got %s", c.RetryInterval)
	case c.ReconnectHold <= 0:
		return fmt.Errorf("ReconnectHold must be positive, got %s", c.ReconnectHold)
	}
	return nil
}

// versionPrefix returns c.VersionPrefix, or one derived from the node name
// and start.
func (c Config) versionPrefix(nodeName string, start time.Time) (string, error) {
	if c.VersionPrefix != "" {
		return c.VersionPrefix, nil
	}
	if nodeName == "" {
		return "", errors.New("xdsserver: a node name is needed to derive the version prefix")
	}
	return nodeName + "." + strconv.FormatInt(start.UnixMilli(), 36) + ".", nil
}
