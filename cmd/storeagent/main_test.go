package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// line is one JSON line of the agent's stdout.
type line struct {
	Service string          `json:"service"`
	Index   uint64          `json:"index"`
	Hash    string          `json:"hash"`
	Chain   json.RawMessage `json:"chain"`
	Error   string          `json:"error"`
}

func lines(t *testing.T, out string) []line {
	t.Helper()
	var ls []line
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		if s == "" {
			continue
		}
		var l line
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("stdout line %q: %v", s, err)
		}
		ls = append(ls, l)
	}
	return ls
}

// startAgent runs the agent with args until the test ends.
func startAgent(t *testing.T, args ...string) (stdout, stderr *syncBuffer) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("agent exited with %d; stderr:\n%s", code, stderr.String())
		}
	})
	return stdout, stderr
}

func TestAgentPrintsWritesAndExecs(t *testing.T) {
	t.Parallel()
	a, b := servertest.StartSingle(t), servertest.StartSingle(t)
	putBoth := func(doc string) uint64 {
		i, j := a.Put(doc), b.Put(doc)
		if i != j {
			t.Fatalf("replicas diverged: %d vs %d", i, j)
		}
		return i
	}
	first := putBoth(servertest.Resolver("web", 5*time.Second))
	dir := t.TempDir()
	execLog := filepath.Join(dir, "exec.log")
	stdout, stderr := startAgent(t, "--addr", a.Addr()+","+b.Addr(), "--watch", "web,api", "--out", dir,
		"--min-backoff", "5ms", "--max-backoff", "50ms",
		"--exec", `echo "$CHAIN_SERVICE $CHAIN_INDEX" >> `+execLog)

	testutil.Poll(t, 10*time.Second, "a line per service", func() bool { return len(lines(t, stdout.String())) >= 2 })
	got := map[string]uint64{}
	for _, l := range lines(t, stdout.String()) {
		got[l.Service] = l.Index
		if l.Hash == "" || len(l.Chain) == 0 || l.Error != "" {
			t.Errorf("line %+v: want a hash and a chain", l)
		}
	}
	if diff := cmp.Diff(map[string]uint64{"web": first, "api": 0}, got); diff != "" {
		t.Errorf("first lines (-want +got):\n%s", diff)
	}

	// A change: a new line, the file replaced, the command run.
	next := putBoth(servertest.Resolver("web", 6*time.Second))
	testutil.Poll(t, 10*time.Second, "the second web line", func() bool { return len(lines(t, stdout.String())) >= 3 })
	ls := lines(t, stdout.String())
	if l := ls[2]; l.Service != "web" || l.Index != next {
		t.Fatalf("third line %+v, want web at %d", l, next)
	}
	file, err := os.ReadFile(filepath.Join(dir, "web.json"))
	if err != nil {
		t.Fatalf("read web.json: %v", err)
	}
	var fl line
	if err := json.Unmarshal(file, &fl); err != nil || fl.Index != next || fl.Hash != ls[2].Hash {
		t.Errorf("web.json = %s (%v), want the version at %d", file, err, next)
	}
	testutil.Poll(t, 10*time.Second, "the exec'd command to record web's change", func() bool {
		data, _ := os.ReadFile(execLog)
		return strings.Contains(string(data), "web "+jsonIndex(next))
	})

	// The first server dies: the agent resumes on the second, gets only
	// the new version, and web.json stays in place meanwhile.
	a.Stop()
	final := b.Put(servertest.Resolver("web", 7*time.Second))
	testutil.Poll(t, 10*time.Second, "the version written after the failover", func() bool { return len(lines(t, stdout.String())) >= 4 })
	if l := lines(t, stdout.String())[3]; l.Service != "web" || l.Index != final {
		t.Errorf("line after failover %+v, want web at %d; stderr:\n%s", l, final, stderr.String())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"api.json", "exec.log", "web.json"}, names); diff != "" {
		t.Errorf("files in --out (-want +got; no temporary file left):\n%s", diff)
	}
}

func jsonIndex(i uint64) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		args    []string
		wantErr bool
	}{
		"valid":            {args: []string{"--addr", "h:1,h:2", "--watch", "web, api", "--out", "d"}},
		"no watch":         {args: []string{"--addr", "h:1"}, wantErr: true},
		"path in service":  {args: []string{"--watch", "../x", "--out", "d"}, wantErr: true},
		"dot service":      {args: []string{"--watch", ".hidden", "--out", "d"}, wantErr: true},
		"bad log level":    {args: []string{"--watch", "web", "--log-level", "loud"}, wantErr: true},
		"extra argument":   {args: []string{"--watch", "web", "extra"}, wantErr: true},
		"path without out": {args: []string{"--watch", "a/b"}},
	}
	for name, tc := range tests {
		var stderr bytes.Buffer
		cfg, err := parseFlags(tc.args, &stderr)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: parseFlags(%q) error = %v, want error %v", name, tc.args, err, tc.wantErr)
		}
		if name == "valid" && !cmp.Equal(cfg.Services, []string{"web", "api"}) {
			t.Errorf("valid: services %q", cfg.Services)
		}
	}
	var stderr bytes.Buffer
	if _, err := parseFlags([]string{"--help"}, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "web.json")
	for _, content := range []string{"one\n", "two\n"} {
		if err := writeFileAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatalf("writeFileAtomic: %v", err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("content %q (%v), want %q", got, err, content)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the directory, want 1 (temporary files left behind)", len(entries))
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing", "x.json"), []byte("x"), 0o600); err == nil {
		t.Errorf("writing into a missing directory succeeded")
	}
}

// TestAgentRestartResumesFromOutFiles: an agent restarted with the same
// --out prints (and writes, and runs --exec for) only the chains that
// changed while it was down; a file it cannot use is ignored.
func TestAgentRestartResumesFromOutFiles(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t)
	srv.Put(servertest.Resolver("web", 5*time.Second))
	dir := t.TempDir()
	args := []string{"--addr", srv.Addr(), "--watch", "web,api", "--out", dir, "--min-backoff", "5ms", "--max-backoff", "50ms"}

	// First run: one line per service, then stop.
	ctx, cancel := context.WithCancel(context.Background())
	stdout1, stderr1 := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, stdout1, stderr1) }()
	testutil.Poll(t, 10*time.Second, "a line per service", func() bool { return len(lines(t, stdout1.String())) >= 2 })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("first run exited with %d: %s", code, stderr1.String())
	}

	// While it is down api changes; web does not.
	apiIdx := srv.Put(servertest.Resolver("api", 3*time.Second))

	stdout2, stderr2 := startAgent(t, args...)
	testutil.Poll(t, 10*time.Second, "api's change", func() bool { return len(lines(t, stdout2.String())) >= 1 })
	if l := lines(t, stdout2.String())[0]; l.Service != "api" || l.Index != apiIdx {
		t.Fatalf("first line after the restart %+v, want api at %d (web is unchanged)", l, apiIdx)
	}
	// The next web line is a new change, not the version already saved.
	webIdx := srv.Put(servertest.Resolver("web", 6*time.Second))
	testutil.Poll(t, 10*time.Second, "web's change", func() bool { return len(lines(t, stdout2.String())) >= 2 })
	if l := lines(t, stdout2.String())[1]; l.Service != "web" || l.Index != webIdx {
		t.Errorf("second line %+v, want web's change at %d; the saved web version was sent again?", l, webIdx)
	}
	if !strings.Contains(stderr2.String(), "resuming from saved chain") {
		t.Errorf("the restarted agent does not log that it resumed:\n%s", stderr2.String())
	}

	// A file the agent cannot use: that chain starts from the server.
	dir3 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir3, "web.json"), []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout3, _ := startAgent(t, "--addr", srv.Addr(), "--watch", "web", "--out", dir3, "--min-backoff", "5ms")
	testutil.Poll(t, 10*time.Second, "web from the server", func() bool { return len(lines(t, stdout3.String())) >= 1 })
	if l := lines(t, stdout3.String())[0]; l.Service != "web" || l.Index != webIdx {
		t.Errorf("line with an unusable saved file %+v, want web at %d", l, webIdx)
	}
}

// TestOutFileModes: --out files are 0600 unless --out-world-readable.
func TestOutFileModes(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t)
	srv.Put(servertest.Resolver("web", 5*time.Second))
	for name, tc := range map[string]struct {
		flags []string
		want  os.FileMode
	}{
		"default":        {nil, 0o600},
		"world-readable": {[]string{"--out-world-readable"}, 0o644},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		args := append([]string{"--addr", srv.Addr(), "--watch", "web", "--out", dir}, tc.flags...)
		startAgent(t, args...)
		var info os.FileInfo
		testutil.Poll(t, 10*time.Second, name+": web.json written", func() bool {
			var err error
			info, err = os.Stat(filepath.Join(dir, "web.json"))
			return err == nil
		})
		if info.Mode().Perm() != tc.want {
			t.Errorf("%s: web.json mode %v, want %v", name, info.Mode().Perm(), tc.want)
		}
	}
}

// TestAgentStatesStaleChainsWithoutQuorum: two of three servers are lost;
// the agent keeps its files, logs "no leader: ...", and --status-file says
// the chains are stale.
func TestAgentStatesStaleChainsWithoutQuorum(t *testing.T) {
	t.Parallel()
	c := servertest.NewCluster(t, 3, nil)
	leader := c.Leader()
	if _, err := c.Client(leader).Apply(context.Background(), &chainstorev1.ApplyRequest{Entry: []byte(servertest.Resolver("web", 5*time.Second))}); err != nil {
		t.Fatal(err)
	}
	f := c.Followers()
	dir := t.TempDir()
	status := filepath.Join(dir, "status.json")
	_, stderr := startAgent(t, "--addr", f[0].GRPCAddr()+","+f[1].GRPCAddr()+","+leader.GRPCAddr(),
		"--watch", "web", "--out", dir, "--status-file", status, "--min-backoff", "10ms", "--max-backoff", "200ms")
	testutil.Poll(t, 10*time.Second, "web.json", func() bool {
		_, err := os.Stat(filepath.Join(dir, "web.json"))
		return err == nil
	})
	c.Crash(leader)
	c.Crash(f[1])
	var st struct {
		Stale  bool   `json:"stale"`
		Reason string `json:"reason"`
	}
	testutil.Poll(t, 15*time.Second, "a stale status file", func() bool {
		data, err := os.ReadFile(status)
		return err == nil && json.Unmarshal(data, &st) == nil && st.Stale
	})
	if !strings.Contains(st.Reason, "no leader") || !strings.Contains(stderr.String(), "no leader:") {
		t.Errorf("status reason %q, stderr:\n%s\nwant both to say no leader", st.Reason, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "web.json")); err != nil {
		t.Errorf("web.json gone while stale: %v", err)
	}
}
