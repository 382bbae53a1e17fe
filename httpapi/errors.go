package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/api"
)

// httpError is an error answered with a given status code and message
// (the body, as plain text, as Consul writes its errors).
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// badRequest is a 400 with msg.
func badRequest(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// serverError marks a status error of a write whose body decoded: the
// server's validation and graph errors are answered with 500 and the
// message, as Consul 1.6 does.
type serverError struct{ err error }

func (e *serverError) Error() string { return e.err.Error() }
func (e *serverError) Unwrap() error { return e.err }

// errorResponse maps a handler error to an HTTP status and message.
//
// gRPC status errors of the services map like this: InvalidArgument 400
// (500 for a write whose body decoded: validation and graph errors, as
// Consul 1.6), NotFound 404, PermissionDenied and Unauthenticated 403,
// ResourceExhausted 429, Unavailable 503 (no leader, shutting down),
// DeadlineExceeded 504, FailedPrecondition (a chain that does not compile,
// a request that reached a non-leader) and everything else 500. The message
// is the exact chain/catalog error text when the status carries one,
// otherwise the status message.
func (s *Server) errorResponse(err error) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.code, he.msg
	}
	var se *serverError
	inWrite := errors.As(err, &se)
	if inWrite {
		// status.FromError of a wrapped status takes the wrapper's whole
		// text as the message: use the status error itself.
		err = se.err
	}
	st, ok := status.FromError(err)
	if !ok {
		switch {
		case errors.Is(err, context.Canceled):
			return 499, "request canceled"
		case errors.Is(err, context.DeadlineExceeded):
			return http.StatusGatewayTimeout, err.Error()
		}
		return http.StatusInternalServerError, err.Error()
	}
	msg := api.ErrorText(err)
	switch st.Code() {
	case codes.InvalidArgument:
		if inWrite {
			return http.StatusInternalServerError, msg
		}
		return http.StatusBadRequest, msg
	case codes.NotFound:
		return http.StatusNotFound, msg
	case codes.PermissionDenied:
		return http.StatusForbidden, msg
	case codes.Unauthenticated:
		return http.StatusForbidden, msg
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests, msg
	case codes.Unavailable:
		return http.StatusServiceUnavailable, msg
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout, msg
	case codes.Canceled:
		return 499, msg
	}
	return http.StatusInternalServerError, msg
}

// writeError writes msg as a plain-text error body.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = fmt.Fprint(w, msg)
}

// writeJSON writes v as the JSON body of a 200 answer.
func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return nil
}
