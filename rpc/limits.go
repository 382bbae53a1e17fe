package rpc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chainstore/chainstore/api"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// Admission limits (docs/reliability.md, G12; all limits are listed in
// docs/design.md, Limits). Every request over a limit is refused before
// anything is proposed to Raft.
const (
	// DefaultMaxConcurrentWrites caps the Apply and Delete calls one
	// server handles at once (forwarded or local). The excess fails at once
	// with ResourceExhausted and reason OVERLOADED.
	DefaultMaxConcurrentWrites = 2048
	// DefaultMaxBlockingQueries caps the blocking reads (Get, List and
	// GetChain with a MinIndex) one server holds at once.
	DefaultMaxBlockingQueries = 16384
	// MaxEntryNameLen is the longest entry name (bytes, as sent and once
	// lower-cased) Apply, Get and Delete accept. Names must also be valid UTF-8 without control
	// characters.
	MaxEntryNameLen = 256
	// overloadRetryDelay is the RetryInfo delay suggested to a refused
	// client.
	overloadRetryDelay = 100 * time.Millisecond
)

// ErrInvalidName is the error for an entry name over MaxEntryNameLen, not
// valid UTF-8, or with a control character. It is reported as
// InvalidArgument with reason INVALID_ENTRY.
var ErrInvalidName = errors.New("invalid config entry name")

// Request classes counted by admission control.
const (
	classWrite        = "write"
	classBlockingRead = "blocking-read"
)

// slots is a counting semaphore that never waits: tryAcquire fails when
// limit slots are taken.
type slots struct {
	class string
	limit int64
	used  atomic.Int64
}

func (s *slots) tryAcquire() bool {
	if s.used.Add(1) > s.limit {
		s.used.Add(-1)
		return false
	}
	return true
}

func (s *slots) release() { s.used.Add(-1) }

// refusal is the status of a request refused by s.
func (s *slots) refusal() error {
	st := status.New(codes.ResourceExhausted, fmt.Sprintf(
		"server overloaded: %d %s requests already in flight on this server (the limit); retry later, with backoff, or on another server",
		s.limit, s.class))
	d, err := st.WithDetails(
		&errdetails.ErrorInfo{Reason: api.ReasonOverloaded, Domain: api.ErrorDomain,
			Metadata: map[string]string{api.MetaClass: s.class, api.MetaLimit: strconv.FormatInt(s.limit, 10)}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(overloadRetryDelay)},
	)
	if err != nil {
		return st.Err()
	}
	return d.Err()
}

// admission is the unary interceptor that enforces the concurrency caps
// and the entry-name rules. It runs before the default deadline, so a
// refused call costs no timer and no decode beyond the name check.
func admission(cfg ServerConfig) grpc.UnaryServerInterceptor {
	writes := &slots{class: classWrite, limit: int64(cfg.MaxConcurrentWrites)}
	reads := &slots{class: classBlockingRead, limit: int64(cfg.MaxBlockingQueries)}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		var sem *slots
		switch info.FullMethod {
		case chainstorev1.EntriesService_Apply_FullMethodName, chainstorev1.EntriesService_Delete_FullMethodName,
			chainstorev1.CatalogService_Register_FullMethodName, chainstorev1.CatalogService_Deregister_FullMethodName,
			chainstorev1.CatalogService_UpdateCheck_FullMethodName:
			sem = writes
		default:
			if br, ok := req.(blockingRequest); ok && br.GetOptions().GetMinIndex() > 0 {
				sem = reads
			}
		}
		if sem != nil {
			if !sem.tryAcquire() {
				return nil, sem.refusal()
			}
			defer sem.release()
		}
		if err := checkRequestName(req); err != nil {
			return nil, statusOf(err, leaderHint{})
		}
		return handler(ctx, req)
	}
}

// checkRequestName applies the entry-name rules to the read requests that
// name an entry, before any work is done for them. Apply and Delete check
// names in applyRequestCommand and deleteRequestCommand, where the entry is
// decoded once.
func checkRequestName(req any) error {
	if r, ok := req.(*chainstorev1.GetRequest); ok {
		return checkName(r.GetKind(), r.GetName())
	}
	return nil
}

// checkName reports an *entryError wrapping ErrInvalidName (inside a
// *chain.DecodeError, so it maps to InvalidArgument / INVALID_ENTRY) when
// name breaks the rules. An empty name is left to the existing checks.
func checkName(kind, name string) error {
	problem := ""
	switch {
	case len(name) > MaxEntryNameLen:
		problem = fmt.Sprintf("the name is %d bytes, the limit is %d bytes", len(name), MaxEntryNameLen)
	case len(strings.ToLower(name)) > MaxEntryNameLen:
		// Keys are lower-cased; a few runes grow when lowered.
		problem = fmt.Sprintf("the lower-cased name is %d bytes, the limit is %d bytes", len(strings.ToLower(name)), MaxEntryNameLen)
	case !utf8.ValidString(name):
		problem = "the name is not valid UTF-8"
	default:
		for i, r := range name {
			if unicode.IsControl(r) {
				problem = fmt.Sprintf("the name has control character %U at byte %d", r, i)
				break
			}
		}
	}
	if problem == "" {
		return nil
	}
	return &entryError{kind: kind, name: shortName(name), err: &chain.DecodeError{Msg: fmt.Sprintf("%v: %s", ErrInvalidName, problem)}}
}

// shortName bounds a name quoted in an error message.
func shortName(name string) string {
	if len(name) <= 64 {
		return name
	}
	return name[:64] + "..."
}

// applyRequestCommand is the conversion and validation an Apply request
// goes through before anything is proposed (the same steps, in the same
// size limit, decode, name rules, Prepare, command. EntriesServer.Apply
// calls it; the fuzz target drives it.
func applyRequestCommand(req *chainstorev1.ApplyRequest, maxEntrySize int) (fsm.Command, error) {
	if err := checkEntrySize(req, maxEntrySize); err != nil {
		return fsm.Command{}, err
	}
	e, err := chain.DecodeEntry(req.GetEntry())
	if err != nil {
		return fsm.Command{}, asDecodeError(err)
	}
	kind, name := e.GetKind(), e.GetName()
	if err := checkName(string(kind), name); err != nil {
		return fsm.Command{}, err
	}
	if err := chain.Prepare(e); err != nil {
		return fsm.Command{}, &entryError{kind: string(kind), name: name, err: err}
	}
	cmd := fsm.Command{Op: fsm.OpUpsert, Entry: e, Key: chain.KeyOf(kind, name)}
	if req.GetCas() {
		cmd.Op, cmd.CASIndex = fsm.OpUpsertCAS, req.GetModifyIndex()
	}
	return cmd, nil
}

// checkEntrySize is applyRequestCommand's first step, the one a follower
// runs before it forwards an Apply as it came (EntriesServer.Apply).
func checkEntrySize(req *chainstorev1.ApplyRequest, maxEntrySize int) error {
	if n := len(req.GetEntry()); n > maxEntrySize {
		return fmt.Errorf("%w: the entry is %d bytes, the limit is %d bytes", ErrEntryTooLarge, n, maxEntrySize)
	}
	return nil
}

// deleteRequestCommand is the Delete counterpart of applyRequestCommand;
// EntriesServer.Delete calls it.
func deleteRequestCommand(req *chainstorev1.DeleteRequest) (fsm.Command, error) {
	if err := checkName(req.GetKind(), req.GetName()); err != nil {
		return fsm.Command{}, err
	}
	kind, err := parseKindName(req.GetKind(), req.GetName())
	if err != nil {
		return fsm.Command{}, err
	}
	cmd := fsm.Command{Op: fsm.OpDelete, Key: chain.KeyOf(kind, req.GetName())}
	if req.GetCas() {
		cmd.Op, cmd.CASIndex = fsm.OpDeleteCAS, req.GetModifyIndex()
	}
	return cmd, nil
}
