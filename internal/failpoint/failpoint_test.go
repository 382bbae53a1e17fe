package failpoint

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The registry is process-wide, so these tests do not run in parallel and
// each resets it.

func reset(t *testing.T) {
	t.Helper()
	if err := Set(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Set("") })
}

func TestDisabledIsInert(t *testing.T) {
	reset(t)
	for _, p := range Points() {
		if err := Eval(p.Name); err != nil {
			t.Errorf("Eval(%q) with nothing enabled = %v, want nil", p.Name, err)
		}
		Hit(p.Name) // must not panic
	}
	if registry.any.Load() {
		t.Errorf("enabled flag set with nothing enabled")
	}
}

func TestCountedTerms(t *testing.T) {
	reset(t)
	if err := Enable(FSMSnapshotPersist, "2*off->1*error"); err != nil {
		t.Fatal(err)
	}
	var got []bool
	for range 5 {
		got = append(got, errors.Is(Eval(FSMSnapshotPersist), ErrInjected))
	}
	want := []bool{false, false, true, false, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("hits of 2*off->1*error failed = %v, want %v", got, want)
		}
	}
	if err := Eval(RaftLogBeforeWrite); err != nil {
		t.Errorf("Eval of a point that is not enabled = %v, want nil", err)
	}
}

func TestErrorForEver(t *testing.T) {
	reset(t)
	if err := Set(RaftLogBeforeWrite + "=error"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		err := Eval(RaftLogBeforeWrite)
		if !errors.Is(err, ErrInjected) || !strings.Contains(err.Error(), RaftLogBeforeWrite) {
			t.Fatalf("Eval = %v, want an error naming the point and wrapping ErrInjected", err)
		}
	}
	Disable(RaftLogBeforeWrite)
	if err := Eval(RaftLogBeforeWrite); err != nil {
		t.Errorf("Eval after Disable = %v, want nil", err)
	}
	if registry.any.Load() {
		t.Errorf("enabled flag still set after the last point was disabled")
	}
}

func TestPanicNamesThePoint(t *testing.T) {
	reset(t)
	if err := Enable(FSMApplyBeforeCommit, "1*off->panic"); err != nil {
		t.Fatal(err)
	}
	Hit(FSMApplyBeforeCommit) // the off term
	defer func() {
		r := recover()
		if s, _ := r.(string); !strings.Contains(s, FSMApplyBeforeCommit) {
			t.Errorf("panic value = %v, want one naming %s", r, FSMApplyBeforeCommit)
		}
	}()
	Hit(FSMApplyBeforeCommit)
	t.Errorf("second hit did not panic")
}

func TestSleep(t *testing.T) {
	reset(t)
	if err := Set(FSMApplyAfterNotify + "=1*sleep(1ms)"); err != nil {
		t.Fatal(err)
	}
	Hit(FSMApplyAfterNotify)
	if got := Enabled(); got[FSMApplyAfterNotify] != "1*sleep(1ms)" {
		t.Errorf("Enabled() = %v", got)
	}
}

func TestBadSpecs(t *testing.T) {
	reset(t)
	if err := Set(FSMSnapshotRestore + "=error"); err != nil {
		t.Fatal(err)
	}
	for spec, want := range map[string]string{
		"fsm/apply/beforeComit=panic":     `unknown failpoint "fsm/apply/beforeComit"`,
		"fsm/apply/beforeCommit=error":    "cannot fail",
		"fsm/apply/beforeCommit=explode":  `unknown action "explode"`,
		"fsm/apply/beforeCommit=0*panic":  "positive integer",
		"fsm/apply/beforeCommit=sleep(x)": "want a duration",
		"fsm/apply/beforeCommit=panic(1)": "takes no argument",
		"fsm/apply/beforeCommit":          "want name=terms",
	} {
		err := Set(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Set(%q) = %v, want an error containing %q", spec, err, want)
		}
	}
	// A failed Set changes nothing.
	if !errors.Is(Eval(FSMSnapshotRestore), ErrInjected) {
		t.Errorf("a rejected Set changed the enabled points")
	}
}

func TestFromEnv(t *testing.T) {
	reset(t)
	t.Setenv(EnvVar, "fsm/snapshot/persist=error; raftnode/log/afterWrite=2*off")
	if err := FromEnv(); err != nil {
		t.Fatal(err)
	}
	if got := Enabled(); len(got) != 2 {
		t.Errorf("Enabled() = %v, want two points", got)
	}
	t.Setenv(EnvVar, "nope=panic")
	if err := FromEnv(); err == nil || !strings.Contains(err.Error(), EnvVar) {
		t.Errorf("FromEnv with a bad spec = %v, want an error naming %s", err, EnvVar)
	}
}

// TestExitAction runs this test binary again with the exit action
// enabled and checks its status and message.
func TestExitAction(t *testing.T) {
	if os.Getenv("FAILPOINT_EXIT_CHILD") == "1" {
		if err := Set(RaftLogAfterWrite + "=exit"); err != nil {
			os.Exit(1)
		}
		Hit(RaftLogAfterWrite)
		os.Exit(0) // not reached when the point works
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestExitAction$")
	cmd.Env = append(os.Environ(), "FAILPOINT_EXIT_CHILD=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitCode {
		t.Fatalf("child exited with %v (output %q), want status %d", err, out, ExitCode)
	}
	if !strings.Contains(string(out), "failpoint "+RaftLogAfterWrite+": exit") {
		t.Errorf("child output %q does not name the failpoint", out)
	}
}

// BenchmarkDisabled measures the cost of a point while none is enabled.
func BenchmarkDisabled(b *testing.B) {
	_ = Set("")
	for b.Loop() {
		Hit(FSMApplyBeforeCommit)
	}
}
