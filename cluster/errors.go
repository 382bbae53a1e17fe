package cluster

import "errors"

// Sentinel errors returned by this package. Compare with errors.Is; they are
// wrapped with context (fmt.Errorf("...: %w", ...)).
var (
	// ErrInvalidConfig is returned by Config.Validate and New for a bad Config.
	ErrInvalidConfig = errors.New("cluster: invalid config")

	// ErrShutdown is returned by Run and Leave once the Cluster has been shut
	// down (by Leave or Shutdown).
	ErrShutdown = errors.New("cluster: shut down")

	// ErrAlreadyRunning is returned by a second, concurrent or later, call
	// to Run: Run is the single owner of the reconcile loop and runs once.
	ErrAlreadyRunning = errors.New("cluster: Run already called")

	// ErrCorruptNodeID is returned by LoadOrCreateNodeID when the node-id
	// file exists but does not hold a UUID. The file is left untouched: a
	// server's identity must never change silently; inspect or delete it.
	ErrCorruptNodeID = errors.New("cluster: corrupt node-id file")

	// errInvalidMeta is the decode error for gossip metadata from a peer
	// (truncated, or an encoding version this build does not understand).
	// It never leaves the package: such peers are listed with an empty ID
	// and ignored by bootstrap and reconcile.
	errInvalidMeta = errors.New("invalid node metadata")

	// errNoGRPCAddr: a server due for removal cannot be probed because
	// gossip holds no gRPC address for it (it counts as not answering).
	errNoGRPCAddr = errors.New("no gRPC address known for the server")
)
