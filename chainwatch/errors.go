package chainwatch

import "errors"

// Sentinel errors of package chainwatch. Compare with errors.Is.
var (
	// ErrStopped: the hub's Run has returned (or never started before the
	// caller gave up), so no subscription can be served.
	ErrStopped = errors.New("chain hub stopped")
	// ErrInvalidChain: a ChainKey that cannot name a chain (no service,
	// a field over its size limit, an unknown mesh-gateway mode).
	ErrInvalidChain = errors.New("invalid chain reference")
	// ErrTooManyChains: the hub already tracks Config.MaxChains chains.
	ErrTooManyChains = errors.New("too many watched chains on this server")
	// ErrTooManySubscriptions: a Watcher already has
	// WatcherConfig.MaxSubscriptions subscriptions.
	ErrTooManySubscriptions = errors.New("too many subscriptions on this stream")
	// ErrDuplicateSubscription: the subscription id is 0 or already open on
	// the Watcher.
	ErrDuplicateSubscription = errors.New("subscription id is zero or already in use")
	// ErrBehind: the client resumes from an index this server has not
	// applied within the resume wait; it should try another server.
	ErrBehind = errors.New("server is behind the client's index")
	// ErrRequestBacklog: a client sent more subscribe/unsubscribe requests
	// than it read answers for (over twice the subscription cap); the
	// stream is ended.
	ErrRequestBacklog = errors.New("too many unanswered subscription requests on this stream")
	// ErrWatcherClosed: the Watcher was closed.
	ErrWatcherClosed = errors.New("watcher closed")
)
