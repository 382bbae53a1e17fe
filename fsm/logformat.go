package fsm

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/chainstore/chainstore/chain"
)

// LogFormat is the body format EncodeCommandFormat writes (docs/design.md,
// Raft log command format). DecodeCommand reads both, whatever is set.
type LogFormat uint8

// Log formats. The zero value is the current format.
const (
	// LogFormatV1: protobuf bodies (the default).
	LogFormatV1 LogFormat = 0
	// LogFormatV0: the JSON bodies of releases before v1. Only for a
	// rolling upgrade from such a release: servers that old cannot read
	// v1 (docs/operations.md, Rolling upgrade).
	LogFormatV0 LogFormat = 1
)

// ErrUnknownLogFormat is returned by LogFormat.Set for a name that is not
// "v0" or "v1".
var ErrUnknownLogFormat = errors.New("unknown Raft log format (want v0 or v1)")

// String implements fmt.Stringer and flag.Value.
func (f LogFormat) String() string {
	switch f {
	case LogFormatV1:
		return "v1"
	case LogFormatV0:
		return "v0"
	}
	return fmt.Sprintf("LogFormat(%d)", uint8(f))
}

// Set implements flag.Value: "v1" or "v0".
func (f *LogFormat) Set(s string) error {
	switch s {
	case "v1":
		*f = LogFormatV1
	case "v0":
		*f = LogFormatV0
	default:
		return fmt.Errorf("%q: %w", s, ErrUnknownLogFormat)
	}
	return nil
}

// Valid reports whether f is a known format.
func (f LogFormat) Valid() bool { return f == LogFormatV1 || f == LogFormatV0 }

// EncodeCommandFormat is EncodeCommand writing format f: with LogFormatV0
// the commands that have a JSON body in v0 are written as v0 (what
// servers from before v1 can read), everything else as EncodeCommand
// writes it.
func EncodeCommandFormat(c Command, f LogFormat) ([]byte, error) {
	switch f {
	case LogFormatV1:
		return EncodeCommand(c)
	case LogFormatV0:
		b, err := EncodeCommand(c)
		if err != nil {
			return nil, err
		}
		return toV0(c, b)
	}
	return nil, fmt.Errorf("encode %s: log format %d: %w", c.Op, uint8(f), ErrUnknownLogFormat)
}

// toV0 rewrites the v1 encoding b of c (checked by EncodeCommand) as v0.
// Commands without a v1 type byte are the same in both formats.
func toV0(c Command, b []byte) ([]byte, error) {
	w := Op(b[0])
	if w < firstWireV1 || w > lastWireV1 {
		return b, nil
	}
	op := logicalOp(w)
	switch {
	case op == OpUpsert || op == OpUpsertCAS:
		js, err := chain.EncodeEntry(c.Entry)
		if err != nil {
			return nil, fmt.Errorf("encode %s v0: %w", op, err)
		}
		out := []byte{byte(op)}
		if op == OpUpsertCAS {
			out = binary.AppendUvarint(out, c.CASIndex)
		}
		return append(out, js...), nil
	case op == OpRegister:
		js, err := json.Marshal(c.Instance)
		if err != nil {
			return nil, fmt.Errorf("encode register v0 of %q: %w", c.Instance.ID, err)
		}
		return append([]byte{byte(op)}, js...), nil
	case isACLOp(op):
		js, err := json.Marshal(aclBody{Policy: c.ACLPolicy, Token: c.ACLToken, ID: c.ACLID, ResetIndex: c.ACLResetIndex})
		if err != nil {
			return nil, fmt.Errorf("encode %s v0: %w", op, err)
		}
		return append([]byte{byte(op)}, js...), nil
	}
	panic(fmt.Sprintf("fsm: v1 type byte for %s has no v0 form", op))
}
