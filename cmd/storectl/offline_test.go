package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/internal/testutil"
)

// `go test ./cmd/storectl/ -update` (the flag of internal/testutil)
// rewrites testdata/*.golden from the current output.
//
// NOTE: review every golden diff before committing it: the files pin the
// user-visible output of storectl.

// writeEntryFiles creates a temp dir holding files (name -> content).
func writeEntryFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	return dir
}

// runStorectl runs storectl in-process and returns exit code, stdout and
// stderr, with the entries directory replaced by "DIR" in stderr.
func runStorectl(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	errText := stderr.String()
	if dir != "" {
		errText = strings.ReplaceAll(errText, dir, "DIR")
	}
	return code, stdout.String(), errText
}

const (
	proxyHTTPHCL = `kind = "proxy-defaults"
name = "global"
config {
  protocol = "http"
}
`
	webRouterHCL = `kind = "service-router"
name = "web"
routes = [
  {
    match { http { path_prefix = "/admin" } }
    destination { service = "admin" }
  },
  {
    match {
      http {
        header = [
          { name = "x-debug", exact = "1" },
        ]
      }
    }
    destination {
      service        = "web"
      service_subset = "canary"
    }
  },
]
`
	webResolverJSON = `{"Kind": "service-resolver", "Name": "web", "ConnectTimeout": "15s",
 "Subsets": {"canary": {"Filter": "Service.Meta.version == canary", "OnlyPassing": true}},
 "Failover": {"*": {"Datacenters": ["dc2"]}}}
`
	specResolverHCL = `Kind          = "service-resolver"
Name          = "web"
DefaultSubset = "v1"
Subsets = {
  v1 = { Filter = "Service.Meta.version == v1" }
  v2 = { Filter = "Service.Meta.version == v2" }
}
`
	webDefaultsHTTPHCL = `kind     = "service-defaults"
name     = "web"
protocol = "http"
`
	webSplitterHCL = `kind = "service-splitter"
name = "web"
splits = [
  { weight = 90, service_subset = "v1" },
  { weight = 10, service_subset = "v2" },
]
`
)

func TestOfflineCompile(t *testing.T) {
	t.Parallel()
	seed := map[string]string{
		"00-proxy.hcl":     proxyHTTPHCL,
		"10-router.hcl":    webRouterHCL,
		"20-resolver.json": webResolverJSON,
		"README.md":        "not an entry file",
	}
	spec := map[string]string{
		"resolver.hcl": specResolverHCL,
		"defaults.hcl": webDefaultsHTTPHCL,
		"splitter.hcl": webSplitterHCL,
	}
	cases := map[string]struct {
		files map[string]string
		args  []string // DIR is replaced by the entries directory
	}{
		"Seed":            {seed, []string{"compile", "--entries", "DIR", "web"}},
		"SeedFlagsLast":   {seed, []string{"compile", "web", "--entries", "DIR"}},
		"SeedGlobalAddr":  {seed, []string{"--addr", "127.0.0.1:1", "compile", "--entries=DIR", "web"}},
		"SpecExampleDC2":  {spec, []string{"compile", "--entries", "DIR", "--datacenter", "dc2", "--use-in-datacenter", "dc1", "web"}},
		"TrustDomain":     {spec, []string{"compile", "--entries", "DIR", "--trust-domain", "abcd.consul", "web"}},
		"Overrides":       {seed, []string{"compile", "--entries", "DIR", "--override-protocol", "tcp", "--override-connect-timeout", "7s", "--override-mesh-gateway", "local", "web"}},
		"UnknownService":  {seed, []string{"compile", "--entries", "DIR", "other"}},
		"EmptyEntriesDir": {map[string]string{}, []string{"compile", "--entries", "DIR", "web"}},
	}
	goldenOf := map[string]string{
		"Seed": "offline-compile-seed", "SeedFlagsLast": "offline-compile-seed", "SeedGlobalAddr": "offline-compile-seed",
		"SpecExampleDC2": "offline-compile-spec-dc2", "TrustDomain": "offline-compile-trust-domain",
		"Overrides": "offline-compile-overrides", "UnknownService": "offline-compile-unknown",
		"EmptyEntriesDir": "offline-compile-empty",
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := writeEntryFiles(t, tc.files)
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "DIR", dir)
			}
			code, stdout, stderr := runStorectl(t, dir, args...)
			if code != 0 || stderr != "" {
				t.Fatalf("storectl %v = exit %d, stderr:\n%s", tc.args, code, stderr)
			}
			if name == "SeedGlobalAddr" || name == "SeedFlagsLast" {
				// Shares the Seed golden file; don't rewrite it twice.
				if testutil.Updating() {
					return
				}
			}
			testutil.Golden(t, filepath.Join("testdata", goldenOf[name]+".golden"), []byte(stdout))
		})
	}
}

func TestOfflineCompileErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		files      map[string]string
		args       []string // after "compile --entries DIR"
		wantCode   int
		wantStderr string // DIR stands for the entries directory
	}{
		"DecodeError": {
			files: map[string]string{
				"bad.hcl":  "kind = \"service-defaults\"\nname = \"web\"\ncornfig { }\n",
				"good.hcl": webDefaultsHTTPHCL,
			},
			args:       []string{"web"},
			wantCode:   1,
			wantStderr: "DIR/bad.hcl: invalid config key \"cornfig\"\n",
		},
		"NoKind": {
			files:      map[string]string{"nokind.json": `{"Name": "web"}`},
			args:       []string{"web"},
			wantCode:   1,
			wantStderr: "DIR/nokind.json: Payload does not contain a kind/Kind key at the top level\n",
		},
		"ValidationErrorEveryFile": {
			files: map[string]string{
				"a.hcl": "kind = \"service-splitter\"\nname = \"web\"\nsplits = [\n  { weight = 90 },\n  { weight = 5, service = \"x\" },\n]\n",
				"b.hcl": "kind = \"service-router\"\nname = \"api\"\nroutes = [ { match { http { path_prefix = \"admin\" } } } ]\n",
			},
			args:     []string{"web"},
			wantCode: 1,
			wantStderr: "DIR/a.hcl: the sum of all split weights must be 100, not 95.000000\n" +
				"DIR/b.hcl: Route[0] PathPrefix doesn't start with '/': \"admin\"\n",
		},
		"GraphErrorNamesTopEntry": {
			files: map[string]string{
				"defaults.hcl": "kind = \"service-defaults\"\nname = \"web\"\nprotocol = \"tcp\"\n",
				"splitter.hcl": webSplitterHCL,
				"resolver.hcl": specResolverHCL,
			},
			args:       []string{"web"},
			wantCode:   1,
			wantStderr: "DIR/splitter.hcl: discovery chain \"web\" uses a protocol \"tcp\" that does not permit advanced routing or splitting behavior\n",
		},
		"GraphErrorInAnotherChain": {
			// The requested chain is fine; the set is not.
			files: map[string]string{
				"proxy.hcl":    proxyHTTPHCL,
				"api.hcl":      "kind = \"service-resolver\"\nname = \"api\"\nredirect { service = \"web\" \n service_subset = \"v9\" }\n",
				"resolver.hcl": specResolverHCL,
			},
			args:       []string{"web"},
			wantCode:   1,
			wantStderr: "DIR/api.hcl: service \"web\" does not have a subset named \"v9\"\n",
		},
		"DuplicateEntry": {
			files: map[string]string{
				"a.hcl": webDefaultsHTTPHCL,
				"b.json": `{"Kind": "service-defaults", "Name": "WEB", "Protocol": "grpc"}
`,
			},
			args:       []string{"web"},
			wantCode:   1,
			wantStderr: "DIR/b.json: duplicate entry service-defaults/web, already defined in DIR/a.hcl\n",
		},
		"MissingService": {
			files:      map[string]string{},
			args:       nil,
			wantCode:   2,
			wantStderr: compileUsage + "\n",
		},
		"TwoServices": {
			files:      map[string]string{},
			args:       []string{"web", "api"},
			wantCode:   2,
			wantStderr: compileUsage + "\n",
		},
		"BadMeshGateway": {
			files:      map[string]string{},
			args:       []string{"--override-mesh-gateway", "sideways", "web"},
			wantCode:   2,
			wantStderr: "storectl compile: --override-mesh-gateway must be none, local or remote, not \"sideways\"\n",
		},
		"NegativeTimeout": {
			files:      map[string]string{},
			args:       []string{"--override-connect-timeout", "-1s", "web"},
			wantCode:   2,
			wantStderr: "storectl compile: --override-connect-timeout must be >= 0, not -1s\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := writeEntryFiles(t, tc.files)
			args := append([]string{"compile", "--entries", dir}, tc.args...)
			code, stdout, stderr := runStorectl(t, dir, args...)
			if code != tc.wantCode {
				t.Errorf("storectl compile %v = exit %d, want %d (stderr %q)", tc.args, code, tc.wantCode, stderr)
			}
			if stdout != "" {
				t.Errorf("storectl compile %v printed to stdout:\n%s", tc.args, stdout)
			}
			if diff := cmp.Diff(tc.wantStderr, stderr); diff != "" {
				t.Errorf("storectl compile %v stderr mismatch (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}

func TestOfflineCompileMissingDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nope")
	code, stdout, stderr := runStorectl(t, dir, "compile", "--entries", dir, "web")
	if code != 1 || stdout != "" {
		t.Errorf("storectl compile (missing dir) = exit %d, stdout %q", code, stdout)
	}
	if want := "DIR: no such file or directory\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
}

func TestOfflineValidate(t *testing.T) {
	t.Parallel()
	dir := writeEntryFiles(t, map[string]string{
		"good.hcl":  webRouterHCL,
		"good.json": webResolverJSON,
		"bad.hcl":   "kind = \"service-resolver\"\nname = \"web\"\ndefault_subset = \"v3\"\n",
		"kind.hcl":  "kind = \"service-thing\"\nname = \"web\"\n",
	})
	file := func(n string) string { return filepath.Join(dir, n) }
	cases := map[string]struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		"AllGood": {
			args:       []string{file("good.hcl"), file("good.json")},
			wantStdout: "DIR/good.hcl: ok\nDIR/good.json: ok\n",
		},
		"SomeBad": {
			args:       []string{file("good.hcl"), file("bad.hcl"), file("kind.hcl"), file("missing.hcl")},
			wantCode:   1,
			wantStdout: "DIR/good.hcl: ok\n",
			wantStderr: "DIR/bad.hcl: DefaultSubset \"v3\" is not a valid subset\n" +
				"DIR/kind.hcl: invalid config entry kind: service-thing\n" +
				"DIR/missing.hcl: no such file or directory\n",
		},
		"NoFiles": {
			args:       nil,
			wantCode:   2,
			wantStderr: "usage: storectl validate FILE...\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"validate"}, tc.args...), &stdout, &stderr)
			gotOut := strings.ReplaceAll(stdout.String(), dir, "DIR")
			gotErr := strings.ReplaceAll(stderr.String(), dir, "DIR")
			if code != tc.wantCode {
				t.Errorf("storectl validate = exit %d, want %d (stderr %q)", code, tc.wantCode, gotErr)
			}
			if diff := cmp.Diff(tc.wantStdout, gotOut); diff != "" {
				t.Errorf("stdout mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantStderr, gotErr); diff != "" {
				t.Errorf("stderr mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
