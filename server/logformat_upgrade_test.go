package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	"github.com/chainstore/chainstore/raftnode"
	"github.com/chainstore/chainstore/server"
)

// The old-format data dir fixture (docs/design.md, Raft log command
// format): testdata/datadir-v0.tar.gz is the data dir of a single server
// that ran the code of commit ac7d277, the last one that wrote the JSON
// log format (format v0). It holds a Raft snapshot and log entries after
// it, written by TestGenerateOldFormatDataDir. testdata/datadir-v0.json is
// the state (oldFormatDump) that server held when it stopped.
//
// Regenerating it with today's code would write the new format and so
// test nothing: the generator stays only to show how the fixture was
// made. It runs when CHAINSTORE_GEN_OLD_DATADIR names the output dir.
const (
	oldFormatArchive  = "testdata/datadir-v0.tar.gz"
	oldFormatDumpFile = "testdata/datadir-v0.json"
)

// oldFormatDoc is every config-entry kind with every field set (the
// fields added after Consul 1.6 included), as the generator wrote them.
var oldFormatDocs = []string{
	`{"Kind":"proxy-defaults","Name":"global","Config":{"protocol":"http","local_connect_timeout_ms":5000,"ratio":0.25,"nested":{"list":[1,"two",true,null]}},
	  "MeshGateway":{"Mode":"local"},"Expose":{"Checks":true,"Paths":[{"Path":"/metrics","LocalPathPort":9102,"ListenerPort":21500,"Protocol":"http"}]},
	  "Meta":{"owner":"platform"}}`,
	`{"Kind":"service-defaults","Name":"web","Protocol":"http","MeshGateway":{"Mode":"remote"},"ExternalSNI":"web.example.com",
	  "Expose":{"Checks":true,"Paths":[{"Path":"/health","LocalPathPort":8080,"ListenerPort":21501,"Protocol":"http2"}]},"Meta":{"team":"web","tier":"front"}}`,
	`{"Kind":"service-defaults","Name":"api","Protocol":"http"}`,
	`{"Kind":"service-defaults","Name":"billing","Protocol":"http"}`,
	`{"Kind":"service-resolver","Name":"api","DefaultSubset":"v1",
	  "Subsets":{"v1":{"Filter":"Service.Meta.version == v1","OnlyPassing":true},"v2":{"Filter":"Service.Meta.version == v2"}},
	  "Failover":{"v1":{"Service":"api","ServiceSubset":"v2","Datacenters":["dc2","dc3"]},"*":{"Targets":[{"Service":"billing","ServiceSubset":"","Datacenter":"dc2"},{"Service":"api","ServiceSubset":"v2","Namespace":"default"}]}},
	  "ConnectTimeout":"3s","RequestTimeout":"15s",
	  "LoadBalancer":{"Policy":"ring_hash","RingHashConfig":{"MinimumRingSize":1024,"MaximumRingSize":8192},
	    "HashPolicies":[{"Field":"header","FieldValue":"x-user"},{"Field":"cookie","FieldValue":"sid","CookieConfig":{"TTL":"30m","Path":"/"}},{"SourceIP":true,"Terminal":true}]},
	  "Meta":{"owner":"api"}}`,
	`{"Kind":"service-resolver","Name":"billing","ConnectTimeout":"2s","LoadBalancer":{"Policy":"least_request","LeastRequestConfig":{"ChoiceCount":3}}}`,
	`{"Kind":"service-resolver","Name":"legacy","Redirect":{"Service":"api","ServiceSubset":"v2","Namespace":"default","Datacenter":"dc1"}}`,
	`{"Kind":"service-splitter","Name":"api","Splits":[
	   {"Weight":90,"ServiceSubset":"v1","RequestHeaders":{"Add":{"x-split":"v1"},"Set":{"x-a":"b"},"Remove":["x-old"]},"ResponseHeaders":{"Set":{"x-served-by":"v1"}}},
	   {"Weight":10,"Service":"api","ServiceSubset":"v2","Namespace":"default"}],"Meta":{"rollout":"canary"}}`,
	`{"Kind":"service-router","Name":"web","Routes":[
	   {"Match":{"HTTP":{"PathPrefix":"/api","Header":[{"Name":"x-debug","Present":true},{"Name":"x-env","Exact":"prod","Invert":true},{"Name":"x-p","Prefix":"a"},{"Name":"x-s","Suffix":"z"},{"Name":"x-r","Regex":"^v[0-9]+$"}],
	     "QueryParam":[{"Name":"canary","Present":true},{"Name":"user","Exact":"alice"},{"Name":"id","Regex":"[0-9]+"}],"Methods":["GET","POST"]}},
	    "Destination":{"Service":"api","PrefixRewrite":"/","RequestTimeout":"5s","IdleTimeout":"1m","NumRetries":3,"RetryOnConnectFailure":true,
	     "RetryOn":["reset","gateway-error"],"RetryOnStatusCodes":[503,504],"RequestHeaders":{"Add":{"x-route":"api"}},"ResponseHeaders":{"Remove":["server"]}}},
	   {"Match":{"HTTP":{"PathExact":"/billing"}},"Destination":{"Service":"billing","Namespace":"default"}},
	   {"Match":{"HTTP":{"PathRegex":"/legacy/.*"}},"Destination":{"Service":"api","ServiceSubset":"v2"}}],"Meta":{"owner":"web"}}`,
	`{"Kind":"service-defaults","Name":"scratch","Protocol":"tcp"}`,
	`{"Kind":"service-defaults","Name":"scratch2","Protocol":"tcp"}`,
}

// oldFormatDump is what the restore test compares: every entry with its
// indexes, the key index of every deleted key, the catalog and the ACL
// state. Raft's applied index is left out (a restarted leader applies its
// own no-op first).
type oldFormatDump struct {
	Entries       []dumpedEntry
	DeletedKeys   map[string]uint64
	Instances     []string
	ACLPolicies   []string
	ACLTokens     []string
	ACLIndex      uint64
	ACLBootstrap  uint64
	SnapshotIndex uint64
	LastIndex     uint64
}

type dumpedEntry struct {
	Key         string
	Canonical   string
	CreateIndex uint64
	ModifyIndex uint64
}

// deletedKeys are the keys the generator deletes after the snapshot.
var deletedKeys = []chain.Key{
	chain.KeyOf(chain.KindServiceDefaults, "scratch"),
	chain.KeyOf(chain.KindServiceDefaults, "scratch2"),
}

func dumpState(t *testing.T, st *fsm.Store) oldFormatDump {
	t.Helper()
	d := oldFormatDump{DeletedKeys: map[string]uint64{}}
	for _, k := range chain.Kinds {
		es, _, _ := st.List(k)
		for _, se := range es {
			js, err := chain.EncodeEntry(se.Entry)
			if err != nil {
				t.Fatalf("EncodeEntry(%s): %v", se.Key(), err)
			}
			d.Entries = append(d.Entries, dumpedEntry{Key: se.Key().String(), Canonical: string(js), CreateIndex: se.CreateIndex, ModifyIndex: se.ModifyIndex})
		}
	}
	v := st.View()
	for _, k := range deletedKeys {
		d.DeletedKeys[k.String()] = v.KeyIndex(k)
	}
	raw := func(x any) string {
		js, err := json.Marshal(x)
		if err != nil {
			t.Fatalf("marshal %T: %v", x, err)
		}
		return string(js)
	}
	for _, in := range v.AllInstances() {
		d.Instances = append(d.Instances, raw(in))
	}
	for _, p := range v.ACLPolicies() {
		d.ACLPolicies = append(d.ACLPolicies, raw(p))
	}
	for _, tok := range v.ACLTokens() {
		d.ACLTokens = append(d.ACLTokens, raw(tok))
	}
	d.ACLIndex, d.ACLBootstrap = v.ACLIndex(), v.ACLBootstrapIndex()
	return d
}

// TestGenerateOldFormatDataDir wrote the fixture (see the const block
// above); it skips unless CHAINSTORE_GEN_OLD_DATADIR is set.
func TestGenerateOldFormatDataDir(t *testing.T) {
	out := os.Getenv("CHAINSTORE_GEN_OLD_DATADIR")
	if out == "" {
		t.Skip("set CHAINSTORE_GEN_OLD_DATADIR=<dir> to regenerate the old-format fixture (only meaningful on commit ac7d277)")
	}
	dataDir := t.TempDir()
	s := servertest.StartSingle(t, func(cfg *server.Config) {
		cfg.DataDir = dataDir
		cfg.Raft.SnapshotThreshold = 40
		cfg.Raft.SnapshotInterval = 20 * time.Millisecond
		cfg.Raft.TrailingLogs = 4
	})
	srv := s.Server()
	apply := func(c fsm.Command) uint64 {
		t.Helper()
		b, err := fsm.EncodeCommand(c)
		if err != nil {
			t.Fatalf("EncodeCommand(%s): %v", c.Op, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, idx, err := srv.Raft().Apply(ctx, b)
		if err != nil {
			t.Fatalf("Apply(%s): %v", c.Op, err)
		}
		if r, ok := resp.(fsm.ApplyResult); !ok || r.Err != nil {
			t.Fatalf("Apply(%s) = %#v", c.Op, resp)
		}
		return idx
	}
	upsert := func(doc string) uint64 {
		t.Helper()
		e, err := chain.DecodeEntry([]byte(doc))
		if err != nil {
			t.Fatalf("DecodeEntry: %v", err)
		}
		return apply(fsm.Command{Op: fsm.OpUpsert, Entry: e})
	}
	hash := strings.Repeat("ab", 32)

	// Before the snapshot: every entry, the catalog and ACL ops.
	for _, doc := range oldFormatDocs {
		upsert(doc)
	}
	apply(fsm.Command{Op: fsm.OpACLBootstrap, ACLToken: &fsm.ACLToken{AccessorID: "acc-mgmt", SecretHash: hash, Description: "bootstrap", Policies: []string{"00000000-0000-0000-0000-000000000001"}}})
	apply(fsm.Command{Op: fsm.OpACLPolicySet, ACLPolicy: &fsm.ACLPolicy{ID: "pol-read", Name: "read-all", Description: "reads", Rules: `service_prefix "" { policy = "read" }`}})
	apply(fsm.Command{Op: fsm.OpACLTokenSet, ACLToken: &fsm.ACLToken{AccessorID: "acc-read", SecretHash: strings.Repeat("cd", 32), Policies: []string{"pol-read"}}})
	apply(fsm.Command{Op: fsm.OpRegister, Instance: &catalog.Instance{ID: "api-1", Service: "api", Address: "10.0.0.1", Port: 8080, Meta: map[string]string{"version": "v1"}, Tags: []string{"a", "b"}, TTL: time.Hour}})
	apply(fsm.Command{Op: fsm.OpRegister, Instance: &catalog.Instance{ID: "api-2", Service: "api", Address: "10.0.0.2", Port: 8080, Meta: map[string]string{"version": "v2"}}})
	last := apply(fsm.Command{Op: fsm.OpCheck, InstanceID: "api-1", Status: catalog.Passing, Output: "ok"})
	for range 40 - len(oldFormatDocs) - 6 {
		last = upsert(oldFormatDocs[2]) // unchanged rewrites, to reach the snapshot threshold
	}
	testutil.Poll(t, 20*time.Second, "a snapshot covering the first writes", func() bool {
		return srv.Raft().Stats().LastSnapshotIndex >= last
	})
	snapIndex := srv.Raft().Stats().LastSnapshotIndex

	// After the snapshot (fewer than SnapshotThreshold commands, so these
	// stay in the log): every entry again, updates, CAS writes, deletes,
	// catalog and ACL ops.
	for _, doc := range oldFormatDocs {
		upsert(doc)
	}
	webIdx := upsert(`{"Kind":"service-defaults","Name":"web","Protocol":"http","Meta":{"team":"web2"}}`)
	st := srv.FSM().Store()
	cur, _, _ := st.Get(chain.KeyOf(chain.KindServiceDefaults, "billing"))
	e, err := chain.DecodeEntry([]byte(`{"Kind":"service-defaults","Name":"billing","Protocol":"http","Meta":{"cas":"yes"}}`))
	if err != nil {
		t.Fatal(err)
	}
	apply(fsm.Command{Op: fsm.OpUpsertCAS, Entry: e, CASIndex: cur.ModifyIndex})
	e, err = chain.DecodeEntry([]byte(`{"Kind":"service-defaults","Name":"fresh","Protocol":"grpc"}`))
	if err != nil {
		t.Fatal(err)
	}
	apply(fsm.Command{Op: fsm.OpUpsertCAS, Entry: e}) // create-only
	apply(fsm.Command{Op: fsm.OpDelete, Key: deletedKeys[0]})
	cur, _, _ = st.Get(deletedKeys[1])
	apply(fsm.Command{Op: fsm.OpDeleteCAS, Key: deletedKeys[1], CASIndex: cur.ModifyIndex})
	apply(fsm.Command{Op: fsm.OpDeregister, InstanceID: "api-2"})
	apply(fsm.Command{Op: fsm.OpCheck, InstanceID: "api-1", Status: catalog.Warning, Output: "slow"})
	apply(fsm.Command{Op: fsm.OpACLPolicyDelete, ACLID: "pol-read"})
	apply(fsm.Command{Op: fsm.OpACLTokenDelete, ACLID: "acc-read"})
	apply(fsm.Command{Op: fsm.OpNoop})
	lastIndex := apply(fsm.Command{Op: fsm.OpReapTombstones, ReapIndex: webIdx})

	if si := srv.Raft().Stats().LastSnapshotIndex; si != snapIndex {
		t.Fatalf("a second snapshot (index %d) swallowed the post-snapshot log", si)
	}
	d := dumpState(t, st)
	d.SnapshotIndex, d.LastIndex = snapIndex, lastIndex
	s.Stop()

	js, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "datadir-v0.json"), append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarGz(&buf, dataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "datadir-v0.tar.gz"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot at %d, last index %d, archive %d bytes", snapIndex, lastIndex, buf.Len())
}

// TestRestoreOldFormatDataDir starts today's server on a copy of the
// old-format fixture and checks that it replays the snapshot and the JSON
// log entries after it into the state the old server held, and that it
// keeps working (a new write lands after the old log).
func TestRestoreOldFormatDataDir(t *testing.T) {
	t.Parallel()
	var want oldFormatDump
	js, err := os.ReadFile(oldFormatDumpFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &want); err != nil {
		t.Fatalf("decode %s: %v", oldFormatDumpFile, err)
	}
	archive, err := os.ReadFile(oldFormatArchive)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	if err := untarGz(bytes.NewReader(archive), dataDir); err != nil {
		t.Fatalf("unpack %s: %v", oldFormatArchive, err)
	}

	s := servertest.StartSingle(t, func(cfg *server.Config) { cfg.DataDir = dataDir })
	srv := s.Server()
	if si := srv.Raft().Stats().LastSnapshotIndex; si != want.SnapshotIndex {
		t.Errorf("LastSnapshotIndex = %d, want %d (the fixture's snapshot)", si, want.SnapshotIndex)
	}
	if ai := srv.FSM().AppliedIndex(); ai < want.LastIndex {
		t.Fatalf("AppliedIndex = %d, want >= %d (the whole old log replayed)", ai, want.LastIndex)
	}
	got := dumpState(t, srv.FSM().Store())
	got.SnapshotIndex, got.LastIndex = want.SnapshotIndex, want.LastIndex
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("state restored from the old-format data dir (-old server +new server):\n%s", diff)
	}

	// The restored server writes on top of the old log.
	idx := s.Put(`{"Kind":"service-defaults","Name":"after-upgrade","Protocol":"http"}`)
	if idx <= want.LastIndex {
		t.Fatalf("new write at index %d, want > %d", idx, want.LastIndex)
	}
	se, _, _ := srv.FSM().Store().Get(chain.KeyOf(chain.KindServiceDefaults, "after-upgrade"))
	if se == nil || se.ModifyIndex != idx {
		t.Fatalf("Get(after-upgrade) = %+v, want ModifyIndex %d", se, idx)
	}
}

// tarGz writes the regular files and directories under dir to w.
func tarGz(w io.Writer, dir string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// untarGz unpacks what tarGz wrote into dir, refusing paths that leave it.
func untarGz(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !filepath.IsLocal(hdr.Name) {
			return &fs.PathError{Op: "untar", Path: hdr.Name, Err: fs.ErrInvalid}
		}
		path := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			b, err := io.ReadAll(io.LimitReader(tr, 16<<20))
			if err != nil {
				return err
			}
			if err := os.WriteFile(path, b, hdr.FileInfo().Mode().Perm()); err != nil {
				return err
			}
		}
	}
}

// TestRaftLogFormatSetting: a leader started with RaftLogFormat v0 (the
// setting for a rolling upgrade from a release before log format v1)
// writes the JSON upserts older servers read, and by default the v1 type
// byte; both apply. The commands are read back from the stopped server's
// raft.db.
func TestRaftLogFormatSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format   fsm.LogFormat
		wantType byte
	}{
		{fsm.LogFormatV0, byte(fsm.OpUpsert)},
		{fsm.LogFormatV1, 0x10},
	} {
		t.Run(tc.format.String(), func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			s := servertest.StartSingle(t, func(cfg *server.Config) {
				cfg.DataDir = dataDir
				cfg.RaftLogFormat = tc.format
				// The log is read back from raft.db below.
				cfg.Raft.LogStore = raftnode.LogStoreBoltDB
			})
			idx := s.Put(`{"Kind":"service-defaults","Name":"web","Protocol":"http"}`)
			se, _, _ := s.Server().FSM().Store().Get(chain.KeyOf(chain.KindServiceDefaults, "web"))
			if se == nil || se.ModifyIndex != idx {
				t.Fatalf("Get(web) = %+v, want ModifyIndex %d", se, idx)
			}
			s.Stop()

			store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dataDir, "raft.db")})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := store.Close(); err != nil {
					t.Error(err)
				}
			}()
			var l raft.Log
			if err := store.GetLog(idx, &l); err != nil {
				t.Fatalf("GetLog(%d): %v", idx, err)
			}
			if len(l.Data) == 0 || l.Data[0] != tc.wantType {
				t.Fatalf("log %d type byte = %q, want 0x%02x", idx, l.Data[:min(len(l.Data), 1)], tc.wantType)
			}
		})
	}
}
