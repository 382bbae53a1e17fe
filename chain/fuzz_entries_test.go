package chain

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fuzzEntrySeeds returns documents for the fuzz corpora: the testdata
// examples, the canonical forms of the round-trip table and a few odd
// shapes. Run a target with e.g.
//
//	go test ./chain -run '^$' -fuzz FuzzDecodeEntry -fuzztime 60s
func fuzzEntrySeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	files, err := filepath.Glob(filepath.Join("testdata", "entries", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	for _, e := range roundTripEntries() {
		enc, err := EncodeEntry(e)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, enc)
	}
	for _, s := range []string{
		``,
		`{}`,
		`kind = "service-splitter"
name = "web"
splits = [{ weight = 99.999, service = "a" }, { weight = "0.001", service = "b" }]`,
		`{"Kind":"service-router","Name":"w","Routes":[{"Match":[{"HTTP":{"Methods":"get","PathExact":"/"}}],"Destination":{"PrefixRewrite":"/x","RequestTimeout":5}}]}`,
		`{"kind":"proxy-defaults","config":{"a":[{"b":{"c":[1,2.5,"3",true,null]}}]},"CreateIndex":1}`,
		`kind = "service-resolver"
name = "web"
subsets { v1 { filter = "Service.Meta.version == v1" } }
failover { "*" { datacenters = ["dc2"] } }
connect_timeout = -1`,
		"kind = \"service-defaults\"\nname = \"\xff\"\nmeta { \"\xfe\" = \"\xfd\" }",
		laterRouterHCL, laterRouterJSON, laterSplitterHCL, laterSplitterJSON,
		laterResolverHCL, laterResolverJSON, laterServiceDefaultsHCL, laterServiceDefaultsJSON,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzDecodeEntry: decoding never panics and fails only with
// *DecodeError; an entry that decodes and passes Prepare re-encodes to
// canonical JSON that both decoders read back to an equal, valid entry
// with the same encoding.
func FuzzDecodeEntry(f *testing.F) {
	for _, s := range fuzzEntrySeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEntry(data)
		if err != nil {
			var derr *DecodeError
			if !errors.As(err, &derr) {
				t.Fatalf("DecodeEntry error %T (%v), want *DecodeError", err, err)
			}
			if e != nil {
				t.Fatalf("DecodeEntry returned an entry with an error")
			}
			return
		}
		if err := Prepare(e); err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Prepare error %T (%v), want *ValidationError", err, err)
			}
			return
		}
		checkCanonicalRoundTrip(t, e)
	})
}

// FuzzDecodeCanonical: the strict decoder never panics, and whatever it
// accepts and validates round-trips the same way.
func FuzzDecodeCanonical(f *testing.F) {
	for _, s := range fuzzEntrySeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeCanonical(data)
		if err != nil {
			var derr *DecodeError
			if !errors.As(err, &derr) {
				t.Fatalf("DecodeCanonical error %T (%v), want *DecodeError", err, err)
			}
			return
		}
		if Prepare(e) != nil {
			return
		}
		checkCanonicalRoundTrip(t, e)
	})
}

// FuzzParseFilter: parsing and matching arbitrary expressions never panic.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"Service.Meta.version == v1", "ServiceMeta.env == prod", "canary in Service.Tags",
		"any Checks as c { c.Status == critical }", `Service.Meta.version matches "^v[0-9]+$"`,
		"not (Node.Datacenter == dc1 or Service.Port > 80)", "Service.Tags is empty", "",
	} {
		f.Add(s)
	}
	inst := testInstance("v1", "prod", []string{"canary"}, HealthPassing, HealthCritical)
	f.Fuzz(func(_ *testing.T, expr string) {
		flt, err := ParseFilter(expr)
		if err != nil {
			return
		}
		_, _ = flt.Match(inst)
	})
}

func checkCanonicalRoundTrip(t *testing.T, e Entry) {
	t.Helper()
	enc, err := EncodeEntry(e)
	if err != nil {
		t.Fatalf("EncodeEntry(valid entry) = %v", err)
	}
	for name, decode := range map[string]func([]byte) (Entry, error){"DecodeEntry": DecodeEntry, "DecodeCanonical": DecodeCanonical} {
		back, err := decode(enc)
		if err != nil {
			t.Fatalf("%s(%s) = %v", name, enc, err)
		}
		if err := Prepare(back); err != nil {
			t.Fatalf("Prepare(%s(%s)) = %v", name, enc, err)
		}
		if !EqualEntries(e, back) {
			t.Fatalf("%s(EncodeEntry(e)) is not equal to e:\n%s", name, enc)
		}
		enc2, err := EncodeEntry(back)
		if err != nil {
			t.Fatalf("EncodeEntry(%s(...)) = %v", name, err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("canonical encoding not stable via %s:\n%s\n%s", name, enc, enc2)
		}
	}
}
