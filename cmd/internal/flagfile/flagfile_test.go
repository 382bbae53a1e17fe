package flagfile

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testFlags struct {
	fs      *flag.FlagSet
	addr    string
	join    string
	expect  int
	json    bool
	timeout time.Duration
}

func newTestFlags() *testFlags {
	f := &testFlags{fs: flag.NewFlagSet("t", flag.ContinueOnError)}
	f.fs.StringVar(&f.addr, "grpc-addr", "127.0.0.1:1", "")
	f.fs.StringVar(&f.join, "join", "", "")
	f.fs.IntVar(&f.expect, "bootstrap-expect", 0, "")
	f.fs.BoolVar(&f.json, "log-json", false, "")
	f.fs.DurationVar(&f.timeout, "leave-timeout", time.Second, "")
	return f
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHCLAndJSON: the same settings from HCL and JSON set the same flags;
// a flag given on the command line wins over the file.
func TestHCLAndJSON(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"c.hcl":  "grpc_addr = \"10.0.0.1:8502\"\njoin = [\"a:1\", \"b:2\"]\nbootstrap_expect = 3\nlog_json = true\nleave_timeout = \"7s\"\n",
		"c.json": `{"grpc_addr": "10.0.0.1:8502", "join": ["a:1", "b:2"], "bootstrap_expect": 3, "log_json": true, "leave_timeout": "7s"}`,
	}
	for name, body := range files {
		f := newTestFlags()
		if err := f.fs.Parse([]string{"--bootstrap-expect", "5"}); err != nil {
			t.Fatal(err)
		}
		vals, err := Load(writeFile(t, name, body))
		if err != nil {
			t.Fatalf("%s: Load: %v", name, err)
		}
		if err := Apply(f.fs, vals, nil); err != nil {
			t.Fatalf("%s: Apply: %v", name, err)
		}
		if f.addr != "10.0.0.1:8502" || f.join != "a:1,b:2" || f.expect != 5 || !f.json || f.timeout != 7*time.Second {
			t.Errorf("%s: flags = %q %q %d %v %s", name, f.addr, f.join, f.expect, f.json, f.timeout)
		}
	}
}

// TestRefusals: unknown keys (named), skipped flags, bad values (nothing
// set), nested blocks and malformed files are refused.
func TestRefusals(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ name, body, want string }{
		"unknown key":       {"c.hcl", "grpc_adr = \"x:1\"\n", `unknown configuration key "grpc_adr" (no flag --grpc-adr)`},
		"kebab key":         {"c.hcl", "\"grpc-addr\" = \"x:1\"\n", `unknown configuration key "grpc-addr"`},
		"skipped flag":      {"c.json", `{"join": "a:1", "secret": "x"}`, `unknown configuration key "secret"`},
		"bad int":           {"c.hcl", "grpc_addr = \"x:1\"\nbootstrap_expect = \"three\"\n", `config key "bootstrap_expect": invalid value "three"`},
		"bad duration":      {"c.json", `{"leave_timeout": "soon"}`, `config key "leave_timeout": invalid value "soon"`},
		"nested":            {"c.hcl", "grpc_addr { x = 1 }\n", `key "grpc_addr": want a string, number, boolean or list`},
		"malformed json":    {"c.json", `{"join": `, "parse config file"},
		"trailing json":     {"c.json", `{"join": "a:1"} {}`, "trailing data"},
		"malformed hcl":     {"c.hcl", "join = = 1", "parse config file"},
		"repeated hcl key":  {"c.hcl", "join = \"a:1\"\njoin = \"b:2\"\n", `key "join" is set twice`},
		"repeated json key": {"c.json", `{"join": "a:1", "join": "b:2"}`, `key "join" is set twice`},
		"comma in a list":   {"c.hcl", "join = [\"a:1,b:2\"]\n", "contains a comma"},
	}
	for name, tc := range cases {
		f := newTestFlags()
		f.fs.String("secret", "", "")
		if err := f.fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		vals, err := Load(writeFile(t, tc.name, tc.body))
		if err == nil {
			err = Apply(f.fs, vals, func(n string) bool { return n == "secret" })
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want one containing %q", name, err, tc.want)
			continue
		}
		if strings.HasPrefix(name, "unknown") && !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%s: %v does not wrap ErrUnknownKey", name, err)
		}
		if f.addr != "127.0.0.1:1" {
			t.Errorf("%s: a refused file set --grpc-addr to %q", name, f.addr)
		}
	}
}

func TestLoadLimits(t *testing.T) {
	t.Parallel()
	if _, err := Load(filepath.Join(t.TempDir(), "missing.hcl")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	big := writeFile(t, "big.hcl", "join = \""+strings.Repeat("a", MaxFileSize)+"\"\n")
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("Load of a big file = %v, want a size error", err)
	}
}
