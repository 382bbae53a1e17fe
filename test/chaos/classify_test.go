package chaos

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/api"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	withReason := func(c codes.Code, reason string) error {
		st, err := status.New(c, "x").WithDetails(&errdetails.ErrorInfo{Domain: api.ErrorDomain, Reason: reason})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	tests := map[string]struct {
		err   error
		write bool
		want  Outcome
	}{
		"ok":                      {err: nil, write: true, want: OutcomeOK},
		"read error":              {err: status.Error(codes.Unavailable, "x"), write: false, want: OutcomeFail},
		"not leader":              {err: withReason(codes.FailedPrecondition, api.ReasonNotLeader), write: true, want: OutcomeFail},
		"no leader":               {err: withReason(codes.Unavailable, api.ReasonNoLeader), write: true, want: OutcomeFail},
		"invalid entry":           {err: withReason(codes.InvalidArgument, api.ReasonInvalidEntry), write: true, want: OutcomeFail},
		"unknown outcome":         {err: withReason(codes.Unknown, api.ReasonUnknownOutcome), write: true, want: OutcomeUnknown},
		"busy, not started":       {err: status.Error(codes.ResourceExhausted, "busy"), write: true, want: OutcomeFail},
		"unavailable (transport)": {err: status.Error(codes.Unavailable, "connection reset"), write: true, want: OutcomeUnknown},
		"deadline":                {err: status.Error(codes.DeadlineExceeded, "x"), write: true, want: OutcomeUnknown},
		"context error":           {err: context.DeadlineExceeded, write: true, want: OutcomeUnknown},
		"plain error":             {err: errors.New("boom"), write: true, want: OutcomeUnknown},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := classify(tc.err, tc.write); got != tc.want {
				t.Errorf("classify(%v, write=%v) = %s, want %s", tc.err, tc.write, got, tc.want)
			}
		})
	}
}
