package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chainstore/chainstore/chain"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// The network-namespace tier (docs/reliability.md, Network namespaces):
// three stored processes, each in a network namespace of its own, joined
// by three separate networks, one per kind of traffic:
//
//	raft    172.31.1.0/24  eth-r   Raft (TCP)
//	gossip  172.31.2.0/24  eth-g   memberlist (UDP and TCP)
//	client  10.X.Y.0/24    eth-c   gRPC (clients, forwarding between servers)
//
// Each network is a bridge in a "switch" namespace with one veth pair per
// node; the test process reaches the client network through one more veth
// pair from its own namespace (the only interface and address it adds
// there; X.Y is random and checked to be unused). Partitions are links set
// down on the switch side, so gossip and Raft can be cut separately (this
// kernel has no netem and this machine no iptables; a link down drops
// every packet, as a partition does). No TCP proxy is involved.
//
// Every name carries a random run ID, so a run never collides with a
// leftover of another; everything is deleted in t.Cleanup (after the
// processes are killed), and leftovers of dead runs (the PID in the name
// is gone) are deleted at the start.
//
// Needs root and ip(8) with netns support; skipped with the reason
// otherwise.

// labPrefix starts the name of every namespace this tier creates.
const labPrefix = "cschaos-"

// netLab is one run's namespaces and networks.
type netLab struct {
	id     string   // labPrefix + PID + "-" + random
	nodes  []string // node namespaces
	sw     string   // switch namespace (the bridges)
	hostIf string   // the test's own veth to the client network
	client string   // client network prefix, "10.X.Y."
}

var labNets = []struct{ short, subnet string }{
	{"r", "172.31.1."},
	{"g", "172.31.2."},
	{"c", ""}, // the client network: netLab.client
}

// netnsSupport reports why the tier cannot run here ("" if it can).
func netnsSupport() string {
	if os.Geteuid() != 0 {
		return "the network-namespace tier creates namespaces and needs root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Sprintf("the network-namespace tier needs ip(8) (iproute2): %v", err)
	}
	return ""
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNetLab builds the namespaces and networks for n nodes.
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	sweepLabs(t)
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	lab := &netLab{id: fmt.Sprintf("%s%d-%s", labPrefix, os.Getpid(), hex.EncodeToString(rnd[:]))}
	lab.sw = lab.id + "-sw"
	lab.hostIf = "csc" + hex.EncodeToString(rnd[:])
	lab.client = freeClientNet(t)
	t.Cleanup(lab.close)

	must := func(args ...string) {
		t.Helper()
		if err := ipCmd(args...); err != nil {
			t.Fatalf("set up network namespaces: %v", err)
		}
	}
	must("netns", "add", lab.sw)
	must("-n", lab.sw, "link", "set", "lo", "up")
	for _, nw := range labNets {
		must("-n", lab.sw, "link", "add", "br-"+nw.short, "type", "bridge")
		must("-n", lab.sw, "link", "set", "br-"+nw.short, "up")
	}
	for i := 1; i <= n; i++ {
		ns := fmt.Sprintf("%s-n%d", lab.id, i)
		must("netns", "add", ns)
		lab.nodes = append(lab.nodes, ns)
		must("-n", ns, "link", "set", "lo", "up")
		for _, nw := range labNets {
			port := fmt.Sprintf("%s%d", nw.short, i)
			must("-n", lab.sw, "link", "add", port, "type", "veth", "peer", "name", "eth-"+nw.short, "netns", ns)
			must("-n", lab.sw, "link", "set", port, "master", "br-"+nw.short, "up")
			must("-n", ns, "addr", "add", lab.addr(nw.short, i)+"/24", "dev", "eth-"+nw.short)
			must("-n", ns, "link", "set", "eth-"+nw.short, "up")
		}
	}
	must("link", "add", lab.hostIf, "type", "veth", "peer", "name", "host", "netns", lab.sw)
	must("-n", lab.sw, "link", "set", "host", "master", "br-c", "up")
	must("addr", "add", lab.client+"254/24", "dev", lab.hostIf)
	must("link", "set", lab.hostIf, "up")
	return lab
}

// addr returns node i's (1-based) address on network short.
func (lab *netLab) addr(short string, i int) string {
	for _, nw := range labNets {
		if nw.short == short && nw.subnet != "" {
			return fmt.Sprintf("%s%d", nw.subnet, i)
		}
	}
	return fmt.Sprintf("%s%d", lab.client, i)
}

// setLink brings node i's (0-based) port on network short down or up.
func (lab *netLab) setLink(t *testing.T, i int, short string, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	if err := ipCmd("-n", lab.sw, "link", "set", fmt.Sprintf("%s%d", short, i+1), state); err != nil {
		t.Errorf("partition: %v", err)
	}
}

// healAll brings every node port up.
func (lab *netLab) healAll(t *testing.T) {
	t.Helper()
	for i := range lab.nodes {
		for _, nw := range labNets {
			lab.setLink(t, i, nw.short, true)
		}
	}
}

// close deletes the namespaces (and with them every veth and bridge) and
// the test's own veth. Errors are ignored: it also cleans up after a
// half-built lab.
func (lab *netLab) close() {
	for _, ns := range lab.nodes {
		_ = ipCmd("netns", "del", ns)
	}
	_ = ipCmd("netns", "del", lab.sw)
	_ = ipCmd("link", "del", lab.hostIf) // normally gone with its peer
}

// freeClientNet picks a random 10.X.Y.0/24 that no interface of this
// namespace uses.
func freeClientNet(t *testing.T) string {
	t.Helper()
	ifaces, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		x, _ := rand.Int(rand.Reader, big.NewInt(50))
		y, _ := rand.Int(rand.Reader, big.NewInt(254))
		prefix := fmt.Sprintf("10.%d.%d.", 200+x.Int64(), 1+y.Int64())
		_, cidr, _ := net.ParseCIDR(prefix + "0/24")
		used := false
		for _, a := range ifaces {
			if ipn, ok := a.(*net.IPNet); ok && (cidr.Contains(ipn.IP) || ipn.Contains(cidr.IP)) {
				used = true
			}
		}
		if !used {
			return prefix
		}
	}
	t.Fatal("no free 10.x.y.0/24 for the client network")
	return ""
}

// sweepLabs deletes the namespaces of earlier runs whose process is gone
// (a test binary killed before its cleanup ran).
func sweepLabs(t *testing.T) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], labPrefix) {
			continue
		}
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(f[0], labPrefix), "-")
		var pid int
		if _, err := fmt.Sscan(pidStr, &pid); err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || pid == os.Getpid() {
			continue // alive (or ours)
		}
		t.Logf("deleting leftover namespace %s of a dead run", f[0])
		_ = ipCmd("netns", "del", f[0])
	}
}

// newNetnsCluster starts three stored processes, one per namespace, and
// waits for a leader with three voters.
func newNetnsCluster(t *testing.T, tuning string) (*procCluster, *netLab) {
	t.Helper()
	lab := newNetLab(t, 3)
	c := &procCluster{t: t, bin: storedBinary(t), tuning: tuning}
	c.wrap = func(n *procNode, argv []string) []string {
		return append([]string{"ip", "netns", "exec", lab.nodes[n.idx]}, argv...)
	}
	root := t.TempDir()
	for i := 0; i < 3; i++ {
		dir := filepath.Join(root, fmt.Sprintf("n%d", i+1))
		n := &procNode{
			idx: i, name: fmt.Sprintf("n%d", i+1),
			dataDir:    filepath.Join(dir, "data"),
			journal:    filepath.Join(dir, "journal.jsonl"),
			logPath:    filepath.Join(dir, "stored.log"),
			stall:      filepath.Join(dir, "disk-stall"),
			failpoints: filepath.Join(dir, "failpoints"),
			raftAddr:   net.JoinHostPort(lab.addr("r", i+1), "8300"),
			gossipAddr: net.JoinHostPort(lab.addr("g", i+1), "8301"),
			grpcAddr:   net.JoinHostPort(lab.addr("c", i+1), "8502"),
		}
		if err := os.MkdirAll(n.dataDir, 0o755); err != nil {
			t.Fatal(err)
		}
		cl, err := newClient([]string{n.grpcAddr}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		n.client = cl
		c.nodes = append(c.nodes, n)
	}
	// Registered after the lab's cleanup, so it runs first: the
	// processes die before their namespaces go.
	t.Cleanup(c.close)
	for i := range c.nodes {
		c.start(i)
	}
	c.waitHealthy(30 * time.Second)
	return c, lab
}

// memberStatus returns what node i's gossip says about node j ("" if
// node i does not answer).
func (c *procCluster) memberStatus(i, j int) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := c.nodes[i].client.Members(ctx, &chainstorev1.MembersRequest{})
	if err != nil {
		return ""
	}
	for _, m := range resp.GetMembers() {
		if m.GetName() == c.nodes[j].name {
			return m.GetStatus()
		}
	}
	return "absent"
}

// probeWrites writes through every node, one after the other, until stop
// is closed, and returns the number of writes and of failed ones (with
// the first error).
func probeWrites(c *procCluster, stop <-chan struct{}) (writes, failed int, first error) {
	for k := 0; ; k++ {
		select {
		case <-stop:
			return writes, failed, first
		default:
		}
		i := k % len(c.nodes)
		raw, err := chain.EncodeEntry(&chain.ServiceConfigEntry{Kind: chain.KindServiceDefaults, Name: "netns-probe",
			Meta: map[string]string{"k": fmt.Sprint(k)}})
		if err != nil {
			return writes, failed + 1, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = c.nodes[i].client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: raw})
		cancel()
		writes++
		if err != nil {
			failed++
			if first == nil {
				first = fmt.Errorf("write through %s: %w", c.nodes[i].name, err)
			}
		}
		pause(100 * time.Millisecond) // probe rate, not a wait for a condition
	}
}

// netnsPartitionPeriod is how long a gossip partition lasts: long enough
// for memberlist to declare the cut node failed (a few seconds with the
// LAN settings), well under the 30 s DeadServerTimeout after which the
// leader would remove a failed server from Raft.
const netnsPartitionPeriod = 8 * time.Second

// gossipDetectTimeout bounds the wait for gossip to notice the cut.
const gossipDetectTimeout = 15 * time.Second

// gossipHealTimeout bounds the wait for gossip to see every server alive
// again after a heal. Measured: 20-26 s after an 8 s partition; the views
// heal one-sidedly at first (the cut server sees a peer alive again while
// the peers still list it as failed) and fully only with memberlist's
// push-pull sync (30 s with the LAN settings) or a rejoin of a server
// that is alone (JoinRetryMax, 30 s). Only the long tier waits for it.
const gossipHealTimeout = 45 * time.Second

type netnsScenario struct {
	name string
	run  func(t *testing.T, c *procCluster, lab *netLab)
}

// gossipOnly cuts the gossip links of the nodes pick chooses and checks
// that the cluster stays available: same leader and term, every probe
// write through every server succeeds, and the cut shows in gossip.
func gossipOnly(pick func(c *procCluster, l int) []int) func(t *testing.T, c *procCluster, lab *netLab) {
	return func(t *testing.T, c *procCluster, lab *netLab) {
		t.Helper()
		l := c.waitLeader(10 * time.Second)
		st := c.status(l)
		cut := pick(c, l)
		cutAt := time.Now()
		for _, i := range cut {
			lab.setLink(t, i, "g", false)
		}
		stop := make(chan struct{})
		type result struct {
			writes, failed int
			err            error
		}
		res := make(chan result, 1)
		go func() {
			w, f, err := probeWrites(c, stop)
			res <- result{w, f, err}
		}()
		// The cut must be real: another node's gossip sees the cut node
		// as failed (or suspect). Failure detection takes a few seconds
		// (longer on a loaded machine); the partition lasts until then,
		// and netnsPartitionPeriod at least.
		seen := poll(gossipDetectTimeout, func() bool {
			for _, o := range c.followers(cut[0]) {
				if s := c.memberStatus(o, cut[0]); s == "failed" || s == "suspect" {
					return true
				}
			}
			return false
		})
		pause(max(0, netnsPartitionPeriod-time.Since(cutAt))) // the partition lasts netnsPartitionPeriod at least
		close(stop)
		r := <-res
		after := c.status(l)
		lab.healAll(t)
		if !seen {
			t.Errorf("no other server's gossip saw %s as failed or suspect within %v: the partition did not cut gossip", c.nodes[cut[0]].name, gossipDetectTimeout)
		}
		if r.failed > 0 {
			t.Errorf("%d of %d probe writes failed during a gossip-only partition; first: %v", r.failed, r.writes, r.err)
		}
		t.Logf("gossip-only partition of %v for %v: %d probe writes, %d failed", names(c, cut), time.Since(cutAt).Round(time.Millisecond), r.writes, r.failed)
		if st == nil || after == nil || !after.GetIsLeader() || after.GetTerm() != st.GetTerm() {
			// Raft does not use gossip, so an election here has another
			// cause (on this 2-core machine, usually load against the
			// 500 ms timeouts); it is a figure, and the probe writes above
			// are what availability means.
			t.Logf("leadership changed during the partition: before %s in term %d, after %s in term %d",
				st.GetLeader(), st.GetTerm(), after.GetLeader(), after.GetTerm())
		}
		if os.Getenv("CHAOS_LONG") == "" {
			return
		}
		// Gossip heals: every node sees every other alive again.
		healed := time.Now()
		var view []string
		minVoters := 3
		if !poll(gossipHealTimeout, func() bool {
			if x := c.leader(); x >= 0 {
				minVoters = min(minVoters, c.voters(x))
			}
			view = view[:0]
			ok := true
			for i := range c.nodes {
				for j := range c.nodes {
					if s := c.memberStatus(i, j); i != j && s != "alive" {
						view = append(view, fmt.Sprintf("%s sees %s %s", c.nodes[i].name, c.nodes[j].name, s))
						ok = false
					}
				}
			}
			if os.Getenv("CHAOS_DEBUG_GOSSIP") != "" {
				t.Logf("%v: %v", time.Since(healed).Round(time.Millisecond), view)
			}
			return ok
		}) {
			t.Errorf("gossip did not see every server alive within %v of the heal: %v", gossipHealTimeout, view)
		} else {
			t.Logf("gossip saw every server alive %v after the heal", time.Since(healed).Round(time.Millisecond))
		}
		if minVoters < 3 {
			// Fixed (docs/reliability.md, Network namespaces): the leader
			// probes a server over gRPC before removing it as dead, so a
			// server Raft and gRPC reach stays a voter whatever gossip says.
			now := 0
			if x := c.leader(); x >= 0 {
				now = c.voters(x)
			}
			t.Errorf("the leader removed a healthy server from Raft while gossip saw it failed (voters fell to %d; %d now)", minVoters, now)
		}
	}
}

func names(c *procCluster, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, c.nodes[i].name)
	}
	return out
}

// cutLeader cuts the leader off on the given networks and checks that the
// others elect a new leader in a higher term.
func cutLeader(nets ...string) func(t *testing.T, c *procCluster, lab *netLab) {
	return func(t *testing.T, c *procCluster, lab *netLab) {
		t.Helper()
		l := c.waitLeader(10 * time.Second)
		st := c.status(l)
		for _, nw := range nets {
			lab.setLink(t, l, nw, false)
		}
		start := time.Now()
		var nl int
		elected := poll(15*time.Second, func() bool {
			for _, i := range c.followers(l) {
				s := c.status(i)
				if s != nil && s.GetIsLeader() && st != nil && s.GetTerm() > st.GetTerm() {
					nl = i
					return true
				}
			}
			return false
		})
		if !elected {
			t.Errorf("no new leader among the others within 15 s of cutting the leader's %v links", nets)
		} else {
			t.Logf("cut %s's %v links: %s leads after %v", c.nodes[l].name, nets, c.nodes[nl].name, time.Since(start).Round(time.Millisecond))
		}
		pause(faultPeriod)
		lab.healAll(t)
	}
}

func netnsScenarios() []netnsScenario {
	return []netnsScenario{
		// The short sample (make test) is the first one.
		{"gossip-partition-leader", gossipOnly(func(_ *procCluster, l int) []int { return []int{l} })},
		{"gossip-partition-follower", gossipOnly(func(c *procCluster, l int) []int { return c.followers(l)[:1] })},
		{"gossip-partition-all", gossipOnly(func(*procCluster, int) []int { return []int{0, 1, 2} })},
		{"raft-partition-leader", cutLeader("r")},
		{"full-partition-leader", cutLeader("r", "g", "c")},
	}
}

// TestNetns runs the network-namespace tier: gossip-partition-leader in
// `go test` (make test), every scenario CHAOS_SEEDS times with
// CHAOS_LONG=1.
func TestNetns(t *testing.T) {
	if testing.Short() && os.Getenv("CHAOS_LONG") == "" {
		t.Skip("-short: the network-namespace sample runs in the full go test (make test)")
	}
	if why := netnsSupport(); why != "" {
		t.Skip(why)
	}
	tr := chooseTier()
	all := netnsScenarios()
	if os.Getenv("CHAOS_LONG") == "" {
		all = all[:1]
	}
	for seed := 1; seed <= tr.seeds; seed++ {
		for _, ns := range all {
			if !selected(ns.name) {
				continue
			}
			name := ns.name
			if tr.seeds > 1 {
				name = fmt.Sprintf("%s/seed-%d", ns.name, seed)
			}
			t.Run(name, func(t *testing.T) {
				c, lab := newNetnsCluster(t, defaultTuning)
				runHistoryOn(t, c, scenario{ns.name, func(t *testing.T, c *procCluster) { //nolint:thelper // a scenario body, not a helper
					ns.run(t, c, lab)
					lab.healAll(t)
				}}, tr, uint64(seed))
			})
		}
	}
}

// TestSweepLabs checks that a namespace left by a dead run is deleted and
// one of a live run is kept.
func TestSweepLabs(t *testing.T) {
	if why := netnsSupport(); why != "" {
		t.Skip(why)
	}
	// A PID above the kernel's pid_max cannot be running.
	dead := fmt.Sprintf("%s%d-sweeptest-n1", labPrefix, 1<<23)
	live := fmt.Sprintf("%s%d-sweeptest-n1", labPrefix, os.Getpid())
	for _, ns := range []string{dead, live} {
		if err := ipCmd("netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ipCmd("netns", "del", ns) })
	}
	sweepLabs(t)
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), dead) {
		t.Errorf("namespace %s of a dead run survived the sweep", dead)
	}
	if !strings.Contains(string(out), live) {
		t.Errorf("namespace %s of this run was swept", live)
	}
}
