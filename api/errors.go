package api

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of chainstore errors.
const ErrorDomain = "chainstore.v1"

// ErrorInfo reasons (see proto/chainstore/v1/entries.proto).
const (
	ReasonInvalidEntry  = "INVALID_ENTRY"
	ReasonGraphInvalid  = "GRAPH_INVALID"
	ReasonEntryTooLarge = "ENTRY_TOO_LARGE"
	// ReasonListTooLarge: an unpaged List would exceed the server's cap
	// for one response (ResourceExhausted): ask for pages.
	ReasonListTooLarge   = "LIST_TOO_LARGE"
	ReasonNotLeader      = "NOT_LEADER"
	ReasonNoLeader       = "NO_LEADER"
	ReasonUnknownOutcome = "UNKNOWN_OUTCOME"
	// ReasonInvalidInstance: a catalog write names a bad instance
	// (InvalidArgument); metadata "id" and "error" (the exact text).
	ReasonInvalidInstance = "INVALID_INSTANCE"
)

// ErrorInfo metadata keys.
const (
	MetaKind       = "kind"
	MetaName       = "name"
	MetaError      = "error"
	MetaLeaderID   = "leader_id"
	MetaLeaderAddr = "leader_addr"
	MetaID         = "id"
)

// ErrorInfo returns the chainstore ErrorInfo detail of a status error, or
// nil when it has none.
func ErrorInfo(err error) *errdetails.ErrorInfo {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info
		}
	}
	return nil
}

// ErrorReason returns the chainstore ErrorInfo reason of a status error
// ("" when it has none).
func ErrorReason(err error) string {
	return ErrorInfo(err).GetReason()
}

// ErrorText returns the text to show a user for an error returned by the
// API: the exact decode/validation/graph message when the status carries
// one (ErrorInfo metadata "error"), otherwise the status message.
func ErrorText(err error) string {
	if msg := ErrorInfo(err).GetMetadata()[MetaError]; msg != "" {
		return msg
	}
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// ErrorInfo reasons of the chain service (see proto/chainstore/v1/watch.proto).
const (
	// ReasonChainCompileError: GetChain of a chain that does not compile
	// (FailedPrecondition); metadata "service", "error" (the exact
	// compiler message) and "index".
	ReasonChainCompileError = "CHAIN_COMPILE_ERROR"
	// ReasonServerBehind: a Watch stream ended because the server had not
	// applied a client's resume index within the resume wait
	// (Unavailable): reconnect to another server.
	ReasonServerBehind = "SERVER_BEHIND"
	// ReasonInvalidChain: a ChainRef that names no chain (InvalidArgument).
	ReasonInvalidChain = "INVALID_CHAIN"
)

// ErrorInfo metadata keys of the chain service.
const (
	MetaService = "service"
	MetaIndex   = "index"
)

// ReasonOverloaded is the ErrorInfo reason of a request refused because
// this server already runs the maximum number of requests of its class
// (ResourceExhausted). Metadata: "class" (write or blocking-read) and
// "limit". The status also carries a google.rpc.RetryInfo.
const ReasonOverloaded = "OVERLOADED"

// ErrorInfo metadata keys of an OVERLOADED status.
const (
	MetaClass = "class"
	MetaLimit = "limit"
)
