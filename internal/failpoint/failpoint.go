// Package failpoint is a small runtime registry of named fault-injection
// points compiled into the server (the idea of etcd's gofail, without its
// code generation). A failpoint is a call such as
//
//	failpoint.Hit(failpoint.FSMApplyBeforeCommit)
//
// at a place where a crash, a delay or an error is worth testing. Every
// point is inert unless enabled: with none enabled, Hit and Eval are one
// atomic load and return. Points are enabled for a whole process, from
// the CHAINSTORE_FAILPOINTS environment variable (FromEnv, called by
// stored at start-up) or at run time with Set (stored's test-only
// --test-failpoints-file, re-read on SIGUSR1).
//
// # Syntax
//
// A spec is "name=terms;name=terms". Terms are "[N*]action[(arg)]" joined
// by "->": each term runs its action N times (for ever without N*), then
// the next term takes over; after the last counted term the point is off.
// Actions:
//
//	off        nothing (use "N*off->panic" to fire on the (N+1)th hit)
//	panic      panic with a message naming the point (a crash with a
//	           goroutine dump; the Raft FSM and snapshot goroutines do not
//	           recover)
//	exit       write a line naming the point to stderr and os.Exit(ExitCode)
//	           at once: no deferred function runs, as after SIGKILL
//	sleep(d)   sleep for the time.Duration d, then go on
//	error      make the point fail with an error wrapping ErrInjected;
//	           only at points that can fail (Point.CanFail), others
//	           refuse the spec
//
// Example: CHAINSTORE_FAILPOINTS="fsm/apply/beforeCommit=200*off->panic".
//
// Names are checked against the catalog (Points), so a misspelt name is an
// error at start-up instead of a test that silently injects nothing.
//
// # Goroutines
//
// None. The registry is guarded by a mutex taken only while some point is
// enabled; the enabled flag is an atomic.Bool read without the lock.
package failpoint

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EnvVar is the environment variable FromEnv reads.
const EnvVar = "CHAINSTORE_FAILPOINTS"

// ExitCode is the status of a process ended by the exit action.
const ExitCode = 86

// ErrInjected is wrapped by the error the error action returns.
var ErrInjected = errors.New("injected failure")

// The compiled-in failpoints.
const (
	// FSMApplyBeforeCommit: in fsm.ApplyBatch after every command of the
	// batch was applied to the memdb transaction, before it commits.
	FSMApplyBeforeCommit = "fsm/apply/beforeCommit"
	// FSMApplyAfterCommit: after the transaction committed, before the
	// applied index advances (WaitForIndex waiters still asleep).
	FSMApplyAfterCommit = "fsm/apply/afterCommit"
	// FSMApplyBeforeNotify: before the change set is published to the
	// feed (chain watchers not yet woken).
	FSMApplyBeforeNotify = "fsm/apply/beforeNotify"
	// FSMApplyAfterNotify: after the change set was published, before the
	// batch's results return to Raft (so before any client is answered).
	FSMApplyAfterNotify = "fsm/apply/afterNotify"
	// FSMSnapshotPersist: in the middle of writing a snapshot (every
	// record written, up to 64 KB of it still buffered; the end record and
	// checksum not). Can fail: the snapshot is cancelled.
	FSMSnapshotPersist = "fsm/snapshot/persist"
	// FSMSnapshotRestore: after a snapshot was decoded, before it replaces
	// the state. Can fail: the restore fails and the state is kept.
	FSMSnapshotRestore = "fsm/snapshot/restore"
	// RaftLogBeforeWrite: before a batch of Raft log entries is written
	// to the log store. Can fail: the write fails (the disk guard then
	// fails the node).
	RaftLogBeforeWrite = "raftnode/log/beforeWrite"
	// RaftLogAfterWrite: after a batch was written (and fsynced), before
	// Raft learns so (a follower has not acknowledged it yet).
	RaftLogAfterWrite = "raftnode/log/afterWrite"
)

// Point describes one compiled-in failpoint.
type Point struct {
	Name string
	// CanFail reports whether the call site handles the error action.
	CanFail bool
}

var catalog = []Point{
	{FSMApplyBeforeCommit, false},
	{FSMApplyAfterCommit, false},
	{FSMApplyBeforeNotify, false},
	{FSMApplyAfterNotify, false},
	{FSMSnapshotPersist, true},
	{FSMSnapshotRestore, true},
	{RaftLogBeforeWrite, true},
	{RaftLogAfterWrite, false},
}

// Points returns the catalog of compiled-in failpoints, sorted by name.
func Points() []Point {
	out := slices.Clone(catalog)
	slices.SortFunc(out, func(a, b Point) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func lookup(name string) (Point, bool) {
	for _, p := range catalog {
		if p.Name == name {
			return p, true
		}
	}
	return Point{}, false
}

// action is what a term does when its point is hit.
type action int

const (
	actOff action = iota
	actPanic
	actExit
	actSleep
	actError
)

type term struct {
	act   action
	sleep time.Duration
	count int // 0: for ever
	text  string
}

// state is one enabled point: its terms and the progress through them.
type state struct {
	spec  string
	terms []term
	pos   int // current term; len(terms) when exhausted (off)
	done  int // times the current term has run
}

// registry is the process-wide set of enabled points.
var registry struct {
	any atomic.Bool // some point is enabled: the fast path's only read

	mu     sync.Mutex // protects points
	points map[string]*state
}

// Hit evaluates a point that cannot fail (Point.CanFail false): it may
// panic, exit or sleep. It costs one atomic load while no point is
// enabled.
func Hit(name string) {
	if !registry.any.Load() {
		return
	}
	_ = run(name)
}

// Eval evaluates a point that can fail: it returns an error wrapping
// ErrInjected for the error action, and may also panic, exit or sleep. It
// costs one atomic load while no point is enabled.
func Eval(name string) error {
	if !registry.any.Load() {
		return nil
	}
	return run(name)
}

func run(name string) error {
	t, ok := next(name)
	if !ok {
		return nil
	}
	switch t.act {
	case actPanic:
		panic(fmt.Sprintf("failpoint %s: panic", name))
	case actExit:
		fmt.Fprintf(os.Stderr, "failpoint %s: exit %d\n", name, ExitCode)
		os.Exit(ExitCode)
	case actSleep:
		time.Sleep(t.sleep) // the injected delay itself
	case actError:
		return fmt.Errorf("failpoint %s: %w", name, ErrInjected)
	case actOff:
	}
	return nil
}

// next returns the term to run for this hit of name and advances the
// point's progress.
func next(name string) (term, bool) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	st, ok := registry.points[name]
	if !ok || st.pos >= len(st.terms) {
		return term{}, false
	}
	t := st.terms[st.pos]
	if t.count > 0 {
		st.done++
		if st.done >= t.count {
			st.pos, st.done = st.pos+1, 0
		}
	}
	return t, true
}

// Enable enables one point with terms (the part after "name=").
func Enable(name, terms string) error {
	st, err := parse(name, terms)
	if err != nil {
		return err
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.points == nil {
		registry.points = map[string]*state{}
	}
	registry.points[name] = st
	registry.any.Store(true)
	return nil
}

// Disable turns one point off.
func Disable(name string) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	delete(registry.points, name)
	registry.any.Store(len(registry.points) > 0)
}

// Set replaces every enabled point with those of spec
// ("name=terms;name=terms"; empty: all off). On a parse error nothing
// changes.
func Set(spec string) error {
	parsed := map[string]*state{}
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, terms, ok := strings.Cut(part, "=")
		if !ok {
			return fmt.Errorf("failpoint spec %q: want name=terms", part)
		}
		name = strings.TrimSpace(name)
		st, err := parse(name, strings.TrimSpace(terms))
		if err != nil {
			return err
		}
		parsed[name] = st
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	registry.points = parsed
	registry.any.Store(len(parsed) > 0)
	return nil
}

// FromEnv calls Set with the value of EnvVar, if it is set.
func FromEnv() error {
	spec, ok := os.LookupEnv(EnvVar)
	if !ok {
		return nil
	}
	if err := Set(spec); err != nil {
		return fmt.Errorf("%s: %w", EnvVar, err)
	}
	return nil
}

// Enabled returns the enabled points and their specs.
func Enabled() map[string]string {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	out := make(map[string]string, len(registry.points))
	for n, st := range registry.points {
		out[n] = st.spec
	}
	return out
}

// parse checks name against the catalog and parses its terms.
func parse(name, spec string) (*state, error) {
	p, ok := lookup(name)
	if !ok {
		names := make([]string, 0, len(catalog))
		for _, q := range Points() {
			names = append(names, q.Name)
		}
		return nil, fmt.Errorf("unknown failpoint %q (known: %s)", name, strings.Join(names, ", "))
	}
	st := &state{spec: spec}
	for _, raw := range strings.Split(spec, "->") {
		t, err := parseTerm(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("failpoint %s: term %q: %w", name, raw, err)
		}
		if t.act == actError && !p.CanFail {
			return nil, fmt.Errorf("failpoint %s: term %q: this point cannot fail (use panic, exit or sleep)", name, raw)
		}
		st.terms = append(st.terms, t)
	}
	return st, nil
}

func parseTerm(s string) (term, error) {
	t := term{text: s}
	if n, rest, ok := strings.Cut(s, "*"); ok {
		c, err := strconv.Atoi(n)
		if err != nil || c <= 0 {
			return t, fmt.Errorf("count %q: want a positive integer", n)
		}
		t.count, s = c, rest
	}
	verb, arg := s, ""
	if i := strings.IndexByte(s, '('); i >= 0 {
		if !strings.HasSuffix(s, ")") {
			return t, errors.New("unclosed argument")
		}
		verb, arg = s[:i], s[i+1:len(s)-1]
	}
	switch verb {
	case "off":
		t.act = actOff
	case "panic":
		t.act = actPanic
	case "exit":
		t.act = actExit
	case "error":
		t.act = actError
	case "sleep":
		d, err := time.ParseDuration(arg)
		if err != nil || d < 0 {
			return t, fmt.Errorf("sleep(%s): want a duration such as sleep(100ms)", arg)
		}
		t.act, t.sleep = actSleep, d
		return t, nil
	default:
		return t, fmt.Errorf("unknown action %q (want off, panic, exit, sleep(d) or error)", verb)
	}
	if arg != "" {
		return t, fmt.Errorf("action %s takes no argument", verb)
	}
	return t, nil
}
