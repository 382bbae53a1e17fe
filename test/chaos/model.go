package chaos

import (
	"fmt"
	"hash/fnv"

	"github.com/anishathalye/porcupine"
)

// entryState is the model state of one key (the model is partitioned by
// key, so a state is a single entry). It is a comparable value: porcupine
// compares states with ==.
type entryState struct {
	Exists bool
	Value  string
	// Mod is the entry's ModifyIndex (0 when absent).
	Mod uint64
	// Floor is the highest Raft index of a write of this key so far: every
	// later write of the key must commit at a higher index, because Raft
	// order is the linearization order of writes.
	Floor uint64
}

// casAllowed is the CAS table of docs/discovery-chain.md, Operations and CAS.
func (s entryState) casAllowed(expect uint64) bool {
	if expect == 0 {
		return !s.Exists
	}
	return s.Exists && s.Mod == expect
}

// modelOptions switches individual model checks.
type modelOptions struct {
	// conflictIndex: a failed CAS on an existing entry reports the entry's
	// current ModifyIndex (ApplyResponse.index).
	conflictIndex bool
}

// kvModel returns the porcupine model of one key's config entry with put,
// linearizable get, CAS on ModifyIndex and delete. Inputs and outputs are
// both the Operation (input fields and output fields of one record).
func kvModel(opts modelOptions) porcupine.Model {
	return porcupine.Model{
		Init: func() interface{} { return entryState{} },
		Step: func(state, _, output interface{}) (bool, interface{}) {
			return stepEntry(opts, state.(entryState), output.(Operation))
		},
		Hash: func(state interface{}) uint64 {
			s := state.(entryState)
			h := fnv.New64a()
			_, _ = fmt.Fprintf(h, "%v|%s|%d|%d", s.Exists, s.Value, s.Mod, s.Floor)
			return h.Sum64()
		},
		DescribeOperation: func(_, output interface{}) string {
			return output.(Operation).String()
		},
		DescribeState: func(state interface{}) string {
			s := state.(entryState)
			if !s.Exists {
				return fmt.Sprintf("absent (floor %d)", s.Floor)
			}
			return fmt.Sprintf("%s @%d", s.Value, s.Mod)
		},
	}
}

// stepEntry is the sequential specification. op carries both input and
// output. Definite failures and failed reads never reach the model
// (resolveOps drops them); unknown outcomes that remain are writes whose
// effect could not be resolved (deletes).
func stepEntry(opts modelOptions, s entryState, op Operation) (bool, entryState) {
	if op.Outcome == OutcomeUnknown {
		switch op.Kind {
		case OpDelete:
			// It may have happened (here) or not (placed last).
			return true, entryState{Floor: s.Floor}
		case OpPut:
			// Unresolved put: we do not know its index; let it write.
			return true, entryState{Exists: true, Value: op.Value, Floor: s.Floor}
		case OpCAS:
			if !s.casAllowed(op.Expect) {
				return true, s
			}
			return true, entryState{Exists: true, Value: op.Value, Floor: s.Floor}
		}
		return true, s
	}
	switch op.Kind {
	case OpGet:
		if !op.Found {
			return !s.Exists, s
		}
		// Mod 0 on an existing entry: written by an unresolved write whose
		// index is unknown.
		return s.Exists && s.Value == op.Got && (s.Mod == op.Index || s.Mod == 0), s
	case OpPut:
		if !op.Applied || op.Index <= s.Floor {
			return false, s
		}
		return true, entryState{Exists: true, Value: op.Value, Mod: op.Index, Floor: op.Index}
	case OpCAS:
		if op.Applied {
			if !s.casAllowed(op.Expect) || op.Index <= s.Floor {
				return false, s
			}
			return true, entryState{Exists: true, Value: op.Value, Mod: op.Index, Floor: op.Index}
		}
		if s.casAllowed(op.Expect) {
			return false, s
		}
		if opts.conflictIndex && s.Exists && op.Index != s.Mod {
			return false, s
		}
		return true, s
	case OpDelete:
		if !s.Exists {
			return true, s // deleting an absent entry changes nothing
		}
		if op.Index <= s.Floor {
			return false, s
		}
		return true, entryState{Floor: op.Index}
	}
	return false, s
}
