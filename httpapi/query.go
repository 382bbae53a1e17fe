package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// requestContext returns the context the services are called with: the
// request's context carrying the token, if any, as incoming gRPC metadata,
// where a gRPC call's metadata would be.
func requestContext(r *http.Request) context.Context {
	ctx := r.Context()
	if tok := token(r); tok != "" {
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(api.TokenMetadataKey, tok))
	}
	return ctx
}

// token returns the request's ACL token, from (in Consul's order of
// precedence) ?token=, X-Consul-Token or Authorization: Bearer.
func token(r *http.Request) string {
	if tok := r.URL.Query().Get("token"); tok != "" {
		return tok
	}
	if tok := r.Header.Get("X-Consul-Token"); tok != "" {
		return tok
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		if scheme, tok, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "bearer") {
			return strings.TrimSpace(tok)
		}
	}
	return ""
}

// queryOptions parses the blocking and consistency parameters of a read:
// ?index=N, ?wait=D (a Go duration such as "10000ms" or "5m"; a bare
// number is seconds, as Consul reads it), ?stale and ?consistent (with or
// without a value), and ?dc, which must name this server's datacenter.
func (s *Server) queryOptions(r *http.Request) (*chainstorev1.QueryOptions, error) {
	q := r.URL.Query()
	if err := s.checkDC(r); err != nil {
		return nil, err
	}
	opts := &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_DEFAULT}
	_, stale := q["stale"]
	_, consistent := q["consistent"]
	switch {
	case stale && consistent:
		return nil, badRequest("Cannot specify ?stale with ?consistent, conflicting semantics.")
	case stale:
		opts.Consistency = chainstorev1.Consistency_CONSISTENCY_STALE
	case consistent:
		opts.Consistency = chainstorev1.Consistency_CONSISTENCY_CONSISTENT
	}
	if v := q.Get("index"); v != "" {
		idx, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, badRequest("Invalid index %q: want a non-negative integer", v)
		}
		opts.MinIndex = idx
	}
	if v := q.Get("wait"); v != "" {
		d, err := parseWait(v)
		if err != nil {
			return nil, badRequest("Invalid wait time %q: %v", v, err)
		}
		opts.Wait = durationpb.New(d)
	}
	return opts, nil
}

// parseWait reads a wait: a Go duration, or a bare number of seconds.
func parseWait(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New(`want a duration such as "10000ms" or "5m"`)
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

// checkDC refuses a ?dc= naming another datacenter: a chainstore cluster
// is one datacenter.
func (s *Server) checkDC(r *http.Request) error {
	if dc := r.URL.Query().Get("dc"); dc != "" && dc != s.cfg.Datacenter {
		return &httpError{code: http.StatusInternalServerError, msg: "No path to datacenter"}
	}
	return nil
}

// setMeta writes Consul's query headers from a response's metadata.
func setMeta(w http.ResponseWriter, m *chainstorev1.QueryMeta) {
	if m == nil {
		return
	}
	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(max(m.GetIndex(), 1), 10))
	h.Set("X-Consul-KnownLeader", strconv.FormatBool(m.GetKnownLeader()))
	h.Set("X-Consul-LastContact", strconv.FormatInt(m.GetLastContact().AsDuration().Milliseconds(), 10))
}

// readBody reads the whole request body, at most Config.MaxBodySize
// bytes; a larger body is a 413.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodySize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &httpError{code: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("Request body too large: the limit is %d bytes", mbe.Limit)}
		}
		return nil, badRequest("Request body could not be read: %v", err)
	}
	return body, nil
}

// casParam parses ?cas=N; ok is false when it is absent.
func casParam(r *http.Request) (index uint64, ok bool, err error) {
	v, present := r.URL.Query()["cas"]
	if !present {
		return 0, false, nil
	}
	idx, err := strconv.ParseUint(strings.Join(v, ""), 10, 64)
	if err != nil {
		return 0, false, badRequest("Invalid cas %q: want a non-negative integer (the ModifyIndex the entry must still have)", strings.Join(v, ""))
	}
	return idx, true, nil
}
