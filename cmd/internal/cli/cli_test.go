package cli

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/api"
)

func testTable() Table[int] {
	return Table[int]{
		{Name: "put", Summary: "write", Run: 1},
		{Name: "get", Summary: "read", Run: 2},
		{Name: "delete", Summary: "remove", Run: 3},
	}
}

func TestTableSelect(t *testing.T) {
	t.Parallel()
	tab := testTable()
	if c, err := tab.Select([]string{"get", "x"}); err != nil || c.Run != 2 || c.Name != "get" {
		t.Errorf("Select(get) = %+v, %v", c, err)
	}
	for _, h := range []string{"-h", "--help", "help"} {
		if _, err := tab.Select([]string{h}); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("Select(%s) error = %v, want flag.ErrHelp", h, err)
		}
	}
	if _, err := tab.Select(nil); !errors.Is(err, ErrNoCommand) || err.Error() != "no command given" {
		t.Errorf("Select(nil) error = %v, want ErrNoCommand", err)
	}
	_, err := tab.Select([]string{"frob"})
	var unknown *UnknownCommandError
	if !errors.As(err, &unknown) || unknown.Name != "frob" || err.Error() != `unknown command "frob"` {
		t.Errorf("Select(frob) error = %v", err)
	}
}

func TestTablePrintUsage(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	testTable().PrintUsage(&b, "usage: tool CMD\ncommands:", 7)
	want := "usage: tool CMD\ncommands:\n  delete  remove\n  get     read\n  put     write\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("PrintUsage (-want +got):\n%s", diff)
	}
}

func TestParseAddrs(t *testing.T) {
	t.Parallel()
	got, err := ParseAddrs(" h:1, ,h:2,")
	if err != nil || !cmp.Equal(got, []string{"h:1", "h:2"}) {
		t.Errorf("ParseAddrs = %q, %v", got, err)
	}
	for _, bad := range []string{"", " , ,"} {
		if _, err := ParseAddrs(bad); err == nil || err.Error() != "--addr: at least one address is needed" {
			t.Errorf("ParseAddrs(%q) error = %v", bad, err)
		}
	}
}

func TestAddrFlag(t *testing.T) {
	// Not parallel: it sets the environment.
	for _, tc := range []struct{ env, want string }{{"", api.DefaultAddr}, {"h:1,h:2", "h:1,h:2"}} {
		t.Setenv(AddrEnv, tc.env)
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		var addr string
		AddrFlag(fs, &addr, "servers")
		if err := fs.Parse(nil); err != nil || addr != tc.want {
			t.Errorf("STORE_ADDR=%q: --addr = %q, want %q", tc.env, addr, tc.want)
		}
		if u := fs.Lookup("addr").Usage; u != "servers (env STORE_ADDR)" {
			t.Errorf("usage %q", u)
		}
		if err := fs.Parse([]string{"--addr", "h:9"}); err != nil || addr != "h:9" {
			t.Errorf("--addr h:9 gave %q, %v", addr, err)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := JSONFlag(fs)
	n := fs.Int("n", 0, "")
	pos, err := ParseInterspersed(fs, []string{"a", "--json", "b", "-n", "3", "c"})
	if err != nil || !cmp.Equal(pos, []string{"a", "b", "c"}) || !*asJSON || *n != 3 {
		t.Errorf("ParseInterspersed = %q, %v; json %v, n %d", pos, err, *asJSON, *n)
	}
	if _, err := ParseInterspersed(fs, []string{"a", "--bogus"}); err == nil {
		t.Error("an unknown flag was accepted")
	}
}

func TestHideFlags(t *testing.T) {
	t.Parallel()
	newSet := func(w io.Writer) *flag.FlagSet {
		fs := flag.NewFlagSet("tool", flag.ContinueOnError)
		fs.SetOutput(w)
		fs.String("name", "def", "the name")
		fs.Duration("wait", time.Second, "how long")
		fs.String("test-hook", "", "TEST ONLY: a hook")
		return fs
	}
	// The default usage text, without the hidden flag.
	want := "Usage of tool:\n  -name string\n    \tthe name (default \"def\")\n  -wait duration\n    \thow long (default 1s)\n"

	var got bytes.Buffer
	fs := newSet(&got)
	HideFlags(fs, "test-")
	// A value set before -h does not change the listed defaults.
	if err := fs.Parse([]string{"--name", "other", "--test-hook", "x", "-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse error = %v, want flag.ErrHelp", err)
	}
	if diff := cmp.Diff(want, got.String()); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	if v := fs.Lookup("test-hook").Value.String(); v != "x" {
		t.Errorf("hidden flag parsed to %q, want x", v)
	}
}

func TestPrintJSON(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := PrintJSON(&out, &errOut, map[string]int{"a": 1}); code != 0 || out.String() != "{\n    \"a\": 1\n}\n" || errOut.Len() != 0 {
		t.Errorf("PrintJSON: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := PrintJSON(&out, &errOut, math.Inf(1)); code != 1 || out.Len() != 0 || !strings.HasPrefix(errOut.String(), "Error encoding JSON: ") {
		t.Errorf("PrintJSON(+Inf): code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteTable(&b, 2, [][]string{{"Node", "ID"}, {"n1", "aaaa"}, {"longer", "b"}}); err != nil {
		t.Fatal(err)
	}
	want := "Node    ID\nn1      aaaa\nlonger  b\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("WriteTable (-want +got):\n%s", diff)
	}
}
