package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The disk tier (docs/reliability.md, Disk faults): faults injected at the
// file-system level, below the server. Every node's data dir is on an
// ext4 file system of its own, in a 64 MiB image file loop-mounted with
// errors=remount-ro. Scenarios, each one history checked like the others:
//
//   - disk-full-leader (and -follower): fill the leader's (a follower's)
//     file system (ENOSPC). The server must exit with a readable "no
//     space left on device" and no panic; after the filler file is
//     removed it restarts and catches up.
//   - disk-readonly-leader: trigger an ext4 error on the leader's file
//     system (/sys/fs/ext4/DEV/trigger_fs_error), which turns it read-only
//     at once (EROFS) as a failing disk does. The server must exit with a
//     readable error; after an fsck and a fresh mount it restarts with its
//     data and catches up.
//
// Needs root, mount, losetup support, mkfs.ext4 and e2fsck; skipped with
// the reason otherwise. device-mapper (dm-flakey, dm-error) is not part of
// this kernel, so it is not used.

const diskImageSize = 64 << 20

// loopDisk is one node's loop-mounted file system.
type loopDisk struct {
	img, mnt string
}

// diskSupport reports why the disk tier cannot run here ("" if it can).
func diskSupport() string {
	if os.Geteuid() != 0 {
		return "the disk tier mounts file systems and needs root"
	}
	for _, tool := range []string{"mount", "umount", "mkfs.ext4", "e2fsck", "findmnt"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("the disk tier needs %s: %v", tool, err)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return fmt.Sprintf("the disk tier needs loop devices: %v", err)
	}
	return ""
}

// withLoopDisk puts the node's data dir on a fresh ext4 file system.
func withLoopDisk(disks map[string]*loopDisk) prepareFunc {
	return func(t *testing.T, n *procNode) {
		t.Helper()
		base := filepath.Dir(n.dataDir)
		d := &loopDisk{img: filepath.Join(base, "disk.img"), mnt: filepath.Join(base, "mnt")}
		if err := os.MkdirAll(d.mnt, 0o700); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(d.img)
		if err == nil {
			err = f.Truncate(diskImageSize)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		// -m 0: no blocks reserved for root (the server runs as root here).
		run(t, "mkfs.ext4", "-q", "-F", "-m", "0", d.img)
		d.mount(t)
		t.Cleanup(func() { d.unmount(t) })
		n.dataDir = filepath.Join(d.mnt, "data")
		disks[n.name] = d
	}
}

func (d *loopDisk) mount(t *testing.T) {
	t.Helper()
	run(t, "mount", "-o", "loop,errors=remount-ro", d.img, d.mnt)
}

// unmount unmounts the file system (and so frees its loop device).
func (d *loopDisk) unmount(t *testing.T) {
	t.Helper()
	out, err := exec.Command("umount", d.mnt).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "not mounted") {
		// Lazy unmount as a last resort, so the loop device is freed once
		// nothing uses it.
		if out2, err2 := exec.Command("umount", "-l", d.mnt).CombinedOutput(); err2 != nil {
			t.Logf("umount %s: %v: %s; umount -l: %v: %s", d.mnt, err, out, err2, out2)
		}
	}
}

// device returns the sysfs name of the mounted device (loopN).
func (d *loopDisk) device(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("findmnt", "-n", "-o", "SOURCE", "--target", d.mnt).Output()
	if err != nil {
		t.Fatalf("findmnt %s: %v", d.mnt, err)
	}
	return filepath.Base(strings.TrimSpace(string(out)))
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// fill writes a filler file until the file system reports ENOSPC.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	// Small writes fill the last partial blocks.
	for _, n := range []int{64 << 10, 4 << 10, 512} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	_ = f.Sync()
	return path
}

type diskScenario struct {
	name string
	run  func(t *testing.T, c *procCluster, disks map[string]*loopDisk)
}

func diskScenarios() []diskScenario {
	return []diskScenario{
		{"disk-full-leader", diskFull(true)},
		{"disk-full-follower", diskFull(false)},
		{"disk-readonly-leader", func(t *testing.T, c *procCluster, disks map[string]*loopDisk) { //nolint:thelper // a scenario body, not a helper
			l := c.waitLeader(10 * time.Second)
			n := c.nodes[l]
			d := disks[n.name]
			before := logSize(n.logPath)
			trigger := filepath.Join("/sys/fs/ext4", d.device(t), "trigger_fs_error")
			if err := os.WriteFile(trigger, []byte("1"), 0o200); err != nil {
				t.Fatalf("write %s: %v", trigger, err)
			}
			if !poll(30*time.Second, func() bool { return !c.running(l) }) {
				t.Errorf("%s did not exit within 30 s of its file system turning read-only", n.name)
				c.signal(l, syscall.SIGKILL)
			} else {
				// The failing call names the state: a write gets EROFS, an
				// fsync of pages the remount left unwritten gets EIO (seen
				// with raft-wal, whose append is a write plus an fsync).
				checkCleanExit(t, c, l, before, "read-only file system", "input/output error")
			}
			// Repair as an operator would: unmount, fsck, mount again.
			d.unmount(t)
			out, err := exec.Command("e2fsck", "-f", "-y", d.img).CombinedOutput()
			var ee *exec.ExitError
			if err != nil && (!errors.As(err, &ee) || ee.ExitCode() > 1) { // 1: errors corrected
				t.Fatalf("e2fsck %s: %v\n%s", d.img, err, out)
			}
			d.mount(t)
			c.start(l)
		}},
	}
}

// diskFull fills the file system of the leader (or of a follower) and
// checks that the server exits cleanly, then frees the space and restarts
// it.
func diskFull(leader bool) func(t *testing.T, c *procCluster, disks map[string]*loopDisk) {
	return func(t *testing.T, c *procCluster, disks map[string]*loopDisk) {
		t.Helper()
		i := c.waitLeader(10 * time.Second)
		if !leader {
			i = c.followers(i)[0]
		}
		n := c.nodes[i]
		d := disks[n.name]
		before := logSize(n.logPath)
		filler := fill(t, d.mnt)
		// Raft reuses log pages that a snapshot freed, so not every
		// write needs new space; the next snapshot or log growth does.
		// Traffic keeps flowing until then.
		if !poll(60*time.Second, func() bool { return !c.running(i) }) {
			t.Errorf("%s did not exit within 60 s of its disk filling up", n.name)
		} else {
			checkCleanExit(t, c, i, before, "no space left on device")
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		if !c.running(i) {
			c.start(i)
		}
	}
}

// checkCleanExit checks that node i exited on its own with a non-zero
// status, without a panic, and that its log names the cause: one of want.
func checkCleanExit(t *testing.T, c *procCluster, i int, logOffset int64, want ...string) {
	t.Helper()
	n := c.nodes[i]
	code := c.exitCode(i)
	out := logSince(n.logPath, logOffset)
	if code == 0 || code == -1 {
		t.Errorf("%s exit status %d, want a non-zero status of its own", n.name, code)
	}
	if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(strings.ToLower(out), w) }) {
		t.Errorf("%s's log says none of %q", n.name, want)
	}
	if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
		t.Errorf("%s panicked instead of exiting cleanly", n.name)
	}
	last := ""
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "stored:") {
			last = line
		}
	}
	t.Logf("%s exited with status %d: %s", n.name, code, last)
}

// TestDiskFaults runs the disk tier: disk-full-leader in `go test` (make
// test), both scenarios CHAOS_SEEDS times with CHAOS_LONG=1.
func TestDiskFaults(t *testing.T) {
	if testing.Short() && os.Getenv("CHAOS_LONG") == "" {
		t.Skip("-short: the disk-fault sample runs in the full go test (make test)")
	}
	if why := diskSupport(); why != "" {
		t.Skip(why)
	}
	tr := chooseTier()
	all := diskScenarios()
	if os.Getenv("CHAOS_LONG") == "" {
		all = all[:1]
	}
	for seed := 1; seed <= tr.seeds; seed++ {
		for _, ds := range all {
			name := ds.name
			if tr.seeds > 1 {
				name = fmt.Sprintf("%s/seed-%d", ds.name, seed)
			}
			if !selected(ds.name) {
				continue
			}
			t.Run(name, func(t *testing.T) {
				disks := map[string]*loopDisk{}
				c := newProcCluster(t, defaultTuning, withLoopDisk(disks))
				body := func(t *testing.T, c *procCluster) { ds.run(t, c, disks) } //nolint:thelper // a scenario body, not a helper
				runHistoryOn(t, c, scenario{ds.name, body}, tr, uint64(seed))
			})
		}
	}
}

// selected applies CHAOS_ONLY (a comma-separated list of scenario names;
// unset: all).
func selected(name string) bool {
	only := os.Getenv("CHAOS_ONLY")
	if only == "" {
		return true
	}
	for _, n := range strings.Split(only, ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}
