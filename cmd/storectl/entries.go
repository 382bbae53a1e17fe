package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/cmd/internal/cli"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// entryCommands are the commands that write and read config entries on
// a running cluster.
func entryCommands() commandTable {
	return commandTable{
		{Name: "put", Summary: "write a config entry: put [--cas --modify-index N] FILE|-", Run: runPut},
		{Name: "get", Summary: "read a config entry: get KIND NAME", Run: runGet},
		{Name: "list", Summary: "list the names of the entries of a kind: list KIND", Run: runList},
		{Name: "delete", Summary: "delete a config entry: delete [--cas --modify-index N] KIND NAME", Run: runDelete},
	}
}

// casFlags are the check-and-set options of put and delete.
type casFlags struct {
	cas         bool
	modifyIndex uint64
}

func addCASFlags(fs *flag.FlagSet) *casFlags {
	cf := &casFlags{}
	fs.BoolVar(&cf.cas, "cas", false, "check-and-set: only write if the entry's ModifyIndex equals --modify-index (0: only if it does not exist)")
	fs.Uint64Var(&cf.modifyIndex, "modify-index", 0, "the ModifyIndex expected by --cas")
	return cf
}

// writeReport is what a write prints: errPrefix starts an error,
// refused is printed when the server did not apply the write (a CAS
// mismatch), done on success. applied, if set, runs after done, with the
// same client; it may print but cannot fail the write.
type writeReport struct {
	errPrefix, refused, done string
	applied                  func(context.Context, *api.Client)
}

// write is the frame of put and delete: dial, run call (retried through
// a leader failover unless --cas, see retryIdempotent), report. call
// reports whether the server applied the write.
func (cf *clientFlags) write(ctx context.Context, stdout, stderr io.Writer, cas *casFlags, r writeReport,
	call func(context.Context, *api.Client) (bool, error),
) int {
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", r.errPrefix, err)
		return 1
	}
	defer func() { _ = c.Close() }()
	var applied bool
	err = retryIdempotent(ctx, !cas.cas, stderr, func(ctx context.Context) error {
		var err error
		applied, err = call(ctx, c)
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", r.errPrefix, api.ErrorText(err))
		return 1
	}
	if !applied {
		fmt.Fprintln(stderr, r.refused)
		return 1
	}
	fmt.Fprintln(stdout, r.done)
	if r.applied != nil {
		r.applied(ctx, c)
	}
	return 0
}

func runPut(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("put", stderr)
	cas := addCASFlags(fs)
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "Must provide exactly one positional argument to specify the config entry to write")
		return 1
	}
	e, body, ok := loadPutInput(pos[0], stderr)
	if !ok {
		return 1
	}
	kind, name := e.GetKind(), e.GetName()
	return cf.write(ctx, stdout, stderr, cas, writeReport{
		errPrefix: fmt.Sprintf("Error writing config entry %q / %q", kind, name),
		refused:   fmt.Sprintf("Config entry %q / %q not updated", kind, name),
		done:      fmt.Sprintf("Config entry written: %s/%s", kind, name),
		// What proxyless gRPC clients will ignore in the chain the entry
		// shapes (see warnGRPC).
		applied: func(ctx context.Context, c *api.Client) { warnGRPC(ctx, c, stderr, e) },
	}, func(ctx context.Context, c *api.Client) (bool, error) {
		resp, err := c.Apply(ctx, &chainstorev1.ApplyRequest{Entry: body, Cas: cas.cas, ModifyIndex: cas.modifyIndex})
		return resp.GetApplied(), err
	})
}

// maxVerbatimJSON is the largest JSON document put sends as written;
// larger ones are sent in canonical (compact) form, so indentation does
// not count against the server's entry size limit.
const maxVerbatimJSON = 64 << 10

// loadPutInput reads and decodes the entry put writes (so bad input gets
// a clear error here, and the kind and name are known) and returns the
// body to send: a JSON document as written (the server decodes it with
// the same chain.DecodeEntry), HCL and large JSON converted to canonical
// JSON. It prints what went wrong, if anything, and then reports false.
func loadPutInput(path string, stderr io.Writer) (chain.Entry, []byte, bool) {
	data, err := readInput(path)
	if err != nil {
		fmt.Fprintf(stderr, "Failed to load data: %v\n", err)
		return nil, nil, false
	}
	e, err := chain.DecodeEntry(data)
	if err != nil {
		fmt.Fprintf(stderr, "Failed to decode config entry input: %v\n", err)
		return nil, nil, false
	}
	if chain.IsJSONDocument(data) && len(data) <= maxVerbatimJSON {
		return e, data, true
	}
	body, err := chain.EncodeEntry(e)
	if err != nil {
		fmt.Fprintf(stderr, "Failed to encode config entry %q / %q: %v\n", e.GetKind(), e.GetName(), err)
		return nil, nil, false
	}
	return e, body, true
}

// readInput reads a file, or stdin for "-".
func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

func runDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("delete", stderr)
	cas := addCASFlags(fs)
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "Must specify the kind and the name: storectl delete KIND NAME")
		return 1
	}
	kind, name := pos[0], pos[1]
	return cf.write(ctx, stdout, stderr, cas, writeReport{
		errPrefix: fmt.Sprintf("Error deleting config entry %q / %q", kind, name),
		refused:   fmt.Sprintf("Config entry %q / %q not deleted", kind, name),
		done:      fmt.Sprintf("Config entry deleted: %s/%s", kind, name),
	}, func(ctx context.Context, c *api.Client) (bool, error) {
		resp, err := c.Delete(ctx, &chainstorev1.DeleteRequest{Kind: kind, Name: name, Cas: cas.cas, ModifyIndex: cas.modifyIndex})
		return resp.GetDeleted(), err
	})
}

// writeRetryWindow bounds how long a plain put or delete is retried while
// the cluster elects a new leader: a few election timeouts.
const writeRetryWindow = 10 * time.Second

// retryIdempotent runs a write, and when idempotent (a plain upsert or
// delete, not CAS) retries it with backoff, for at most writeRetryWindow,
// while it fails in a way a retry can cure: no server reachable
// (codes.Unavailable) or a lost connection between a follower and the
// leader after the write was forwarded (an unknown outcome). Repeating a
// plain upsert or delete that was applied changes nothing and reports
// success, so the user sees one clean answer through a leader failover.
// A CAS write is never retried: its unknown outcome is reported.
func retryIdempotent(ctx context.Context, idempotent bool, stderr io.Writer, call func(context.Context) error) error {
	deadline := time.Now().Add(writeRetryWindow)
	delay := 100 * time.Millisecond
	for {
		err := call(ctx)
		if err == nil || !idempotent || ctx.Err() != nil || !retryable(err) || time.Now().Add(delay).After(deadline) {
			return err
		}
		fmt.Fprintf(stderr, "Retrying in %s: %s\n", delay, api.ErrorText(err))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		delay = min(2*delay, time.Second)
	}
}

// retryable reports whether a failed idempotent write may be retried.
func retryable(err error) bool {
	return status.Code(err) == codes.Unavailable || api.ErrorReason(err) == api.ReasonUnknownOutcome
}
