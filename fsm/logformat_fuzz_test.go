package fsm

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/chainstore/chainstore/chain"
	raftlogv1 "github.com/chainstore/chainstore/proto/chainstore/raftlog/v1"
)

// logFormatDocs are entry documents with every field of every kind set
// (the fields added after Consul 1.6 included), for the seeds and the
// table test of the log formats.
var logFormatDocs = map[string]string{
	"ServiceDefaults": `{"Kind":"service-defaults","Name":"Web","Protocol":"HTTP","MeshGateway":{"Mode":"remote"},"ExternalSNI":"web.example.com",
	  "Expose":{"Checks":true,"Paths":[{"Path":"/health","LocalPathPort":8080,"ListenerPort":21501,"Protocol":"http2"}]},"Meta":{"team":"web","":"empty key"}}`,
	"ServiceDefaultsEmpty": `{"Kind":"service-defaults","Name":"x"}`,
	"ProxyDefaults": `{"Kind":"proxy-defaults","Name":"global","Config":{"protocol":"http","n":5000,"f":0.25,"big":1e300,"neg":-3,"nested":{"list":[1,"two",true,null,{"<html>":"&"}]}},
	  "MeshGateway":{"Mode":"local"},"Expose":{"Checks":true},"Meta":{"owner":"platform"}}`,
	"Resolver": `{"Kind":"service-resolver","Name":"api","DefaultSubset":"v1",
	  "Subsets":{"v1":{"Filter":"Service.Meta.version == v1","OnlyPassing":true},"v2":{},"":{"Filter":"x"}},
	  "Failover":{"v1":{"Service":"api","ServiceSubset":"v2","Namespace":"ns","Datacenters":["dc2","dc3"]},"*":{"Targets":[{"Service":"b","ServiceSubset":"s","Namespace":"n","Datacenter":"dc2"},{}]},"v2":{}},
	  "ConnectTimeout":"3s","RequestTimeout":-15000000000,
	  "LoadBalancer":{"Policy":"ring_hash","RingHashConfig":{"MinimumRingSize":1024,"MaximumRingSize":4294967296000},"LeastRequestConfig":{},
	    "HashPolicies":[{"Field":"header","FieldValue":"x-user"},{"Field":"cookie","FieldValue":"sid","CookieConfig":{"Session":true,"TTL":"30m","Path":"/"}},{"SourceIP":true,"Terminal":true},{}]},
	  "Meta":{"owner":"api"}}`,
	"ResolverRedirect":      `{"Kind":"service-resolver","Name":"legacy","Redirect":{"Service":"api","ServiceSubset":"v2","Namespace":"default","Datacenter":"dc1"},"LoadBalancer":{"Policy":"least_request","LeastRequestConfig":{"ChoiceCount":3}}}`,
	"ResolverEmptyRedirect": `{"Kind":"service-resolver","Name":"r","Redirect":{},"LoadBalancer":{}}`,
	"Splitter": `{"Kind":"service-splitter","Name":"api","Splits":[
	   {"Weight":33.33,"ServiceSubset":"v1","RequestHeaders":{"Add":{"x-split":"v1"},"Set":{"x-a":"b"},"Remove":["x-old","x-older"]},"ResponseHeaders":{}},
	   {"Weight":66.67,"Service":"api","ServiceSubset":"v2","Namespace":"default"},{}],"Meta":{"rollout":"canary"}}`,
	"Router": `{"Kind":"service-router","Name":"web","Routes":[
	   {"Match":{"HTTP":{"PathPrefix":"/api","Header":[{"Name":"x-debug","Present":true},{"Name":"x-env","Exact":"prod","Invert":true},{"Name":"x-p","Prefix":"a"},{"Name":"x-s","Suffix":"z"},{"Name":"x-r","Regex":"^v[0-9]+$"},{"Name":""}],
	     "QueryParam":[{"Name":"canary","Present":true},{"Name":"user","Exact":"alice"},{"Name":"id","Regex":"[0-9]+"}],"Methods":["get","POST"]}},
	    "Destination":{"Service":"api","ServiceSubset":"s","Namespace":"n","PrefixRewrite":"/","RequestTimeout":"5s","IdleTimeout":"1m","NumRetries":4294967295,"RetryOnConnectFailure":true,
	     "RetryOn":["reset","gateway-error"],"RetryOnStatusCodes":[503,504,0],"RequestHeaders":{"Add":{"x-route":"api"}},"ResponseHeaders":{"Remove":["server"]}}},
	   {"Match":{"HTTP":{"PathExact":"/billing"}},"Destination":{"Service":"billing"}},
	   {"Match":{},"Destination":{}},
	   {}],"Meta":{"owner":"web"}}`,
}

// v0Upsert is the log format v0 encoding of an upsert of e (what servers
// before format v1 wrote): the type byte and the canonical entry JSON.
func v0Upsert(tb testing.TB, e chain.Entry) []byte {
	tb.Helper()
	js, err := chain.EncodeEntry(e)
	if err != nil {
		tb.Fatal(err)
	}
	return append([]byte{byte(OpUpsert)}, js...)
}

// TestLogFormatsDecodeAlike: for every document, the v0 and v1 encodings
// of its upsert decode to the same command and the same canonical JSON.
func TestLogFormatsDecodeAlike(t *testing.T) {
	t.Parallel()
	for name, doc := range logFormatDocs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e, err := chain.DecodeEntry([]byte(doc))
			if err != nil {
				t.Fatalf("DecodeEntry: %v", err)
			}
			checkLogFormatsAlike(t, e)
		})
	}
}

// checkLogFormatsAlike checks the contract of log format v1 for e: the
// v1 command decodes to the entry the v0 (JSON) command decodes to, as
// canonical JSON and as a Go value, and the wire decoder agrees with the
// generated protobuf code.
func checkLogFormatsAlike(t *testing.T, e chain.Entry) {
	t.Helper()
	c0, err := DecodeCommand(v0Upsert(t, e))
	if err != nil {
		t.Fatalf("DecodeCommand(v0) = %v", err)
	}
	b1, err := EncodeCommand(Command{Op: OpUpsert, Entry: e})
	if err != nil {
		t.Fatalf("EncodeCommand = %v", err)
	}
	if w := Op(b1[0]); w != wireUpsertV1 {
		t.Fatalf("EncodeCommand wrote type byte 0x%02x, want 0x%02x (v1 upsert)", b1[0], uint8(wireUpsertV1))
	}
	c1, err := DecodeCommand(b1)
	if err != nil {
		t.Fatalf("DecodeCommand(v1) = %v", err)
	}
	want, err := chain.EncodeEntry(c0.Entry)
	if err != nil {
		t.Fatal(err)
	}
	got, err := chain.EncodeEntry(c1.Entry)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("canonical JSON after v1 = %s\nafter v0 = %s", got, want)
	}
	if orig, err := chain.EncodeEntry(e); err != nil || !bytes.Equal(orig, want) {
		t.Fatalf("canonical JSON of the original = %s (%v), after the log %s", orig, err, want)
	}
	if diff := cmp.Diff(c0, c1, cmp.Comparer(func(a, b chain.Entry) bool { return chain.EqualEntries(a, b) })); diff != "" {
		t.Fatalf("v0 and v1 commands differ (-v0 +v1):\n%s", diff)
	}

	// The generated code reads the same entry from the v1 bytes.
	var m raftlogv1.Upsert
	if err := proto.Unmarshal(b1[1:], &m); err != nil {
		t.Fatalf("proto.Unmarshal(v1 body) = %v", err)
	}
	viaGen, err := entryFromProto(m.GetEntry())
	if err != nil {
		t.Fatalf("entryFromProto = %v", err)
	}
	if diff := cmp.Diff(viaGen, c1.Entry); diff != "" {
		t.Fatalf("wire decoder and generated code differ (-generated +wire):\n%s", diff)
	}
}

// fuzzLogFormatSeeds returns the entry documents of chain/testdata and
// logFormatDocs.
func fuzzLogFormatSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	files, err := filepath.Glob(filepath.Join("..", "chain", "testdata", "entries", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, doc := range logFormatDocs {
		seeds = append(seeds, []byte(doc))
	}
	return seeds
}

// FuzzEntryLogFormats: for any document the entry decoder (JSON or HCL)
// accepts and the v0 log format can carry (chain.EncodeEntry succeeds),
// the v1 log format carries it too and gives every replica the entry v0
// gave it (checkLogFormatsAlike).
func FuzzEntryLogFormats(f *testing.F) {
	for _, s := range fuzzLogFormatSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		e, err := chain.DecodeEntry(doc)
		if err != nil {
			return
		}
		if _, err := chain.EncodeEntry(e); err != nil {
			return
		}
		checkLogFormatsAlike(t, e)
		checkWireEncoder(t, uint64(len(doc)), e)
	})
}

// FuzzUpsertWireDecoder: the wire decoder never panics on arbitrary bytes,
// and whatever it accepts the generated protobuf code accepts too and
// decodes (with entryFromProto) to the same entry.
func FuzzUpsertWireDecoder(f *testing.F) {
	for _, s := range fuzzLogFormatSeeds(f) {
		e, err := chain.DecodeEntry(s)
		if err != nil {
			f.Fatal(err)
		}
		b, err := EncodeCommand(Command{Op: OpUpsertCAS, Entry: e, CASIndex: 7})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[1:])
	}
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		cas, e, err := decodeUpsertWire(b)
		if err != nil {
			return
		}
		var m raftlogv1.Upsert
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatalf("wire decoder accepted what proto.Unmarshal refuses (%v)", err)
		}
		if m.GetCasIndex() != cas {
			t.Fatalf("cas = %d, generated code says %d", cas, m.GetCasIndex())
		}
		if e == nil {
			if m.GetEntry() != nil {
				t.Fatalf("wire decoder found no entry, generated code found %v", m.GetEntry())
			}
			return
		}
		viaGen, err := entryFromProto(m.GetEntry())
		if err != nil {
			// Only the proxy Config JSON can fail here, and the wire
			// decoder decodes it alike.
			t.Fatalf("entryFromProto = %v after the wire decoder accepted it", err)
		}
		if diff := cmp.Diff(viaGen, e); diff != "" {
			t.Fatalf("wire decoder and generated code differ (-generated +wire):\n%s", diff)
		}
	})
}

// TestUpsertWireEncoderMatchesGenerated: the direct encoder writes the
// bytes the generated code writes (deterministic) for the same entry.
func TestUpsertWireEncoderMatchesGenerated(t *testing.T) {
	t.Parallel()
	for name, doc := range logFormatDocs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e, err := chain.DecodeEntry([]byte(doc))
			if err != nil {
				t.Fatalf("DecodeEntry: %v", err)
			}
			checkWireEncoder(t, 42, e)
		})
	}
}

func checkWireEncoder(t *testing.T, cas uint64, e chain.Entry) {
	t.Helper()
	got, err := encodeUpsertWire(nil, cas, e)
	if err != nil {
		t.Fatalf("encodeUpsertWire = %v", err)
	}
	pe, err := entryToProto(e)
	if err != nil {
		t.Fatal(err)
	}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&raftlogv1.Upsert{CasIndex: cas, Entry: pe})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encodeUpsertWire = %x\ngenerated code   = %x", got, want)
	}
}
