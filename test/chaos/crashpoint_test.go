package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/failpoint"
)

// The crash-point tier (docs/reliability.md, G8 and Crash points): one
// history per compiled-in failpoint (internal/failpoint). While traffic
// flows, the point is enabled in one running server (written to its
// --test-failpoints-file, then SIGUSR1) or, for start-up restore, in the
// environment of a restart; the server crashes there (or fails the
// operation, for the error action), is restarted without the failpoint,
// and the history is checked like every other one: porcupine, no
// acknowledged write lost, replica agreement, and every node applying the
// final write within 10 s (it caught up).

// crashPoint is one crash-point scenario.
type crashPoint struct {
	name  string
	point string // failpoint name
	terms string // failpoint terms, e.g. "panic"
	// leader: enable it on the leader (else on a follower).
	leader bool
	// mode says how the point is reached.
	mode crashMode
}

type crashMode int

const (
	// crashRunning: enable on the running server; traffic reaches the
	// point and the process exits.
	crashRunning crashMode = iota
	// crashNoExit: the error action; the server must survive it. The
	// point is turned off again after faultPeriod.
	crashNoExit
	// crashAtStart: kill the server once it has a snapshot and restart it
	// with the point in CHAINSTORE_FAILPOINTS (start-up restore).
	crashAtStart
	// crashOnInstall: enable on a follower, cut it off until the leader
	// has compacted past it, heal: the snapshot install reaches the point.
	crashOnInstall
)

func crashPoints() []crashPoint {
	return []crashPoint{
		// The short sample (make test) is the first one.
		{"apply-before-commit-leader", failpoint.FSMApplyBeforeCommit, "panic", true, crashRunning},
		{"apply-after-commit-follower", failpoint.FSMApplyAfterCommit, "panic", false, crashRunning},
		{"apply-before-notify-leader", failpoint.FSMApplyBeforeNotify, "exit", true, crashRunning},
		{"apply-after-notify-leader", failpoint.FSMApplyAfterNotify, "panic", true, crashRunning},
		{"apply-after-notify-follower", failpoint.FSMApplyAfterNotify, "exit", false, crashRunning},
		{"snapshot-persist-leader", failpoint.FSMSnapshotPersist, "panic", true, crashRunning},
		{"snapshot-persist-follower-exit", failpoint.FSMSnapshotPersist, "exit", false, crashRunning},
		{"snapshot-persist-error-leader", failpoint.FSMSnapshotPersist, "error", true, crashNoExit},
		{"snapshot-restore-at-start", failpoint.FSMSnapshotRestore, "panic", false, crashAtStart},
		{"snapshot-restore-on-install", failpoint.FSMSnapshotRestore, "panic", false, crashOnInstall},
		{"log-before-write-leader", failpoint.RaftLogBeforeWrite, "panic", true, crashRunning},
		{"log-after-write-follower", failpoint.RaftLogAfterWrite, "panic", false, crashRunning},
		{"log-after-write-leader", failpoint.RaftLogAfterWrite, "exit", true, crashRunning},
		{"log-write-error-leader", failpoint.RaftLogBeforeWrite, "error", true, crashRunning},
	}
}

// TestCrashPoints runs the crash-point tier: one sample in `go test`
// (make test), every point CHAOS_SEEDS times with CHAOS_LONG=1 (make
// chaos). CHAOS_ONLY selects scenarios by name here too.
func TestCrashPoints(t *testing.T) {
	if testing.Short() && os.Getenv("CHAOS_LONG") == "" {
		t.Skip("-short: the crash-point sample runs in the full go test (make test)")
	}
	tr := chooseTier()
	all := crashPoints()
	if os.Getenv("CHAOS_LONG") == "" {
		all = all[:1]
	}
	if only := os.Getenv("CHAOS_ONLY"); only != "" {
		want := map[string]bool{}
		for _, n := range strings.Split(only, ",") {
			want[strings.TrimSpace(n)] = true
		}
		var sel []crashPoint
		for _, cp := range crashPoints() {
			if want[cp.name] {
				sel = append(sel, cp)
			}
		}
		all = sel
	}
	for seed := 1; seed <= tr.seeds; seed++ {
		for _, cp := range all {
			name := cp.name
			if tr.seeds > 1 {
				name = fmt.Sprintf("%s/seed-%d", cp.name, seed)
			}
			t.Run(name, func(t *testing.T) {
				runHistory(t, scenario{name: cp.name, run: cp.run}, tr, uint64(seed))
			})
		}
	}
}

// run is the scenario body: it leaves every node running without the
// failpoint.
func (cp crashPoint) run(t *testing.T, c *procCluster) { //nolint:thelper // a scenario body, not a helper
	l := c.waitLeader(10 * time.Second)
	i := l
	if !cp.leader {
		i = c.followers(l)[0]
	}
	n := c.nodes[i]
	logBefore := logSize(n.logPath)
	spec := cp.point + "=" + cp.terms
	switch cp.mode {
	case crashAtStart:
		if !poll(30*time.Second, func() bool { return hasSnapshot(n.dataDir) }) {
			t.Fatalf("%s wrote no snapshot within 30 s", n.name)
		}
		c.signal(i, syscall.SIGKILL)
		n.env = []string{failpoint.EnvVar + "=" + spec}
		c.start(i)
		n.env = nil
	case crashOnInstall:
		c.setFailpoints(t, i, spec)
		var from uint64
		if st := c.status(i); st != nil {
			from = st.GetAppliedIndex()
		}
		c.blackhole(i)
		poll(30*time.Second, func() bool {
			ls := c.status(c.leader())
			return ls != nil && ls.GetCommitIndex() > from+256+256+128
		})
		pause(1500 * time.Millisecond) // at least one snapshot interval after the threshold
		c.healAll()
	default:
		c.setFailpoints(t, i, spec)
	}

	if cp.mode == crashNoExit {
		pause(faultPeriod)
		c.setFailpoints(t, i, "")
		if !c.running(i) {
			t.Errorf("%s exited on %s; the error action must be survived", n.name, spec)
			c.start(i)
		}
		if !strings.Contains(logSince(n.logPath, logBefore), "failpoint "+cp.point) {
			t.Errorf("%s's log does not show failpoint %s failing an operation", n.name, cp.point)
		}
		return
	}

	start := time.Now()
	if !poll(30*time.Second, func() bool { return !c.running(i) }) {
		t.Errorf("%s did not exit within 30 s of enabling %s", n.name, spec)
		c.setFailpoints(t, i, "")
		return
	}
	code := c.exitCode(i)
	out := logSince(n.logPath, logBefore)
	if !strings.Contains(out, "failpoint "+cp.point) {
		t.Errorf("%s exited (status %d) but its log does not name failpoint %s", n.name, code, cp.point)
	}
	if cp.terms == "exit" && code != failpoint.ExitCode {
		t.Errorf("%s exited with status %d, want %d (the exit action)", n.name, code, failpoint.ExitCode)
	}
	t.Logf("%s (%s) crashed at %s %v after it was enabled (status %d); restarting it without failpoints",
		n.name, map[bool]string{true: "leader", false: "follower"}[i == l], cp.point, time.Since(start).Round(time.Millisecond), code)
	c.start(i)
}

// setFailpoints writes spec to node i's failpoints file and signals it.
func (c *procCluster) setFailpoints(t *testing.T, i int, spec string) {
	t.Helper()
	if err := os.WriteFile(c.nodes[i].failpoints, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	before := logSize(c.nodes[i].logPath)
	c.signal(i, syscall.SIGUSR1)
	// The server logs the new set; wait for it so the caller knows the
	// point is armed (or disarmed) before it goes on.
	if !poll(5*time.Second, func() bool {
		return !c.running(i) || strings.Contains(logSince(c.nodes[i].logPath, before), "stored: failpoints now")
	}) {
		t.Errorf("%s did not confirm the failpoints %q within 5 s", c.nodes[i].name, spec)
	}
}

// exitCode returns the exit status of node i's last process (-1 if it was
// killed by a signal or is still running).
func (c *procCluster) exitCode(i int) int {
	n := c.nodes[i]
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// hasSnapshot reports whether dataDir holds a complete Raft snapshot.
func hasSnapshot(dataDir string) bool {
	des, err := os.ReadDir(filepath.Join(dataDir, "snapshots"))
	if err != nil {
		return false
	}
	for _, de := range des {
		if de.IsDir() && !strings.HasSuffix(de.Name(), ".tmp") {
			return true
		}
	}
	return false
}

// logSize returns the size of a log file (0 if absent): an offset for
// logSince.
func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns what was appended to the log file after offset.
func logSince(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}
