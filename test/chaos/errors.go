package chaos

import "errors"

// Sentinel errors of the package.
var (
	// ErrUnsupportedKind: the workload has no entry shape for this kind.
	ErrUnsupportedKind = errors.New("unsupported entry kind")
	// ErrBadJournal: an apply journal line could not be parsed.
	ErrBadJournal = errors.New("malformed apply journal")
	// ErrProxyClosed is returned by Proxy.Close after the first call.
	ErrProxyClosed = errors.New("proxy closed")
)
