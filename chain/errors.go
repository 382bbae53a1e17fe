package chain

// DecodeError reports an entry document that could not be decoded: no or
// bad kind, unknown keys, wrong types. Msg is the exact user-facing text.
type DecodeError struct {
	Msg string
}

func (e *DecodeError) Error() string { return e.Msg }

// ValidationError reports an entry that fails its own validation
// (docs/discovery-chain.md, Validation). Msg is the exact user-facing
// text, e.g. `Route[0] PathExact doesn't start with '/': "x"`.
type ValidationError struct {
	Kind Kind
	Name string
	Msg  string
}

func (e *ValidationError) Error() string { return e.Msg }

// GraphError reports a discovery chain that cannot be compiled because of
// how entries refer to each other (docs/discovery-chain.md, Graph errors).
// These are the
// only errors expected when compiling entries that passed validation.
type GraphError struct {
	Msg string
}

func (e *GraphError) Error() string { return e.Msg }
