package fsm

import "errors"

// Sentinel errors of package fsm. Compare with errors.Is; the returned
// errors wrap them with details.
var (
	// ErrUnknownOp reports a command whose type byte names no known
	// operation. Apply skips such a command silently when its type byte
	// carries IgnoreUnknownFlag, and returns it as an ApplyResult error
	// otherwise.
	ErrUnknownOp = errors.New("unknown command type")

	// ErrMalformedCommand reports command bytes that cannot be decoded, or a
	// Command that cannot be encoded (nil entry, key mismatch, ...).
	ErrMalformedCommand = errors.New("malformed command")

	// ErrBadSnapshot reports a snapshot stream that is not a complete,
	// well-formed chainstore FSM snapshot (wrong magic, truncated, corrupt,
	// checksum mismatch). The current state is left untouched.
	ErrBadSnapshot = errors.New("bad snapshot")

	// ErrUnsupportedSnapshotVersion reports a snapshot written with a schema
	// version this binary does not understand.
	ErrUnsupportedSnapshotVersion = errors.New("unsupported snapshot version")

	// ErrInternal reports a command that could not be applied because
	// validation code failed unexpectedly (a recovered panic). The state is
	// unchanged; the failure is deterministic on every replica running the
	// same code.
	ErrInternal = errors.New("internal error applying command")

	// ErrInstanceNotFound reports a check update for an instance ID the
	// catalog does not hold.
	ErrInstanceNotFound = errors.New("instance not found")
)
