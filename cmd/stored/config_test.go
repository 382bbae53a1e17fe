package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/server"
)

func writeConfig(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigFile: every setting can come from the file (HCL or JSON);
// command-line flags win; unknown keys, hidden test flags and the
// config-file key itself are refused with the key named.
func TestConfigFile(t *testing.T) {
	t.Parallel()
	hcl := writeConfig(t, "s.hcl", `
node = "n7"
datacenter = "east"
grpc_addr = "127.0.0.1:9502"
join = ["127.0.0.1:1", "127.0.0.1:2"]
bootstrap_expect = 3
log_level = "debug"
log_json = true
pprof_addr = "127.0.0.1:6060"
`)
	var stderr bytes.Buffer
	cfg, dbg, err := parseFlags([]string{"--config-file", hcl, "--node", "n9"}, &stderr)
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}
	if cfg.NodeName != "n9" || cfg.Datacenter != "east" || cfg.GRPCAddr != "127.0.0.1:9502" ||
		strings.Join(cfg.Join, ",") != "127.0.0.1:1,127.0.0.1:2" || cfg.BootstrapExpect != 3 ||
		cfg.LogLevel != "debug" || !cfg.LogJSON || dbg.PprofAddr != "127.0.0.1:6060" {
		t.Errorf("config = %+v, debug %+v", cfg, dbg)
	}
	js := writeConfig(t, "s.json", `{"node": "n8", "raft_addr": "127.0.0.1:9300"}`)
	cfg, _, err = parseFlags([]string{"--config-file", js}, &stderr)
	if err != nil || cfg.NodeName != "n8" || cfg.RaftAddr != "127.0.0.1:9300" {
		t.Errorf("JSON file: %+v, %v", cfg, err)
	}

	for body, want := range map[string]string{
		`grpc_addr_x = "x:1"`:            `unknown configuration key "grpc_addr_x"`,
		`test_raft_tuning = "x"`:         `unknown configuration key "test_raft_tuning"`,
		`config_file = "other.hcl"`:      `unknown configuration key "config_file"`,
		`bootstrap_expect = "three"`:     `config key "bootstrap_expect": invalid value "three"`,
		`log_level = "loud"`:             `--log-level "loud"`,
		"node = \"n1\"\nnode = \"n2\"\n": `key "node"`,
	} {
		_, _, err := parseFlags([]string{"--config-file", writeConfig(t, "bad.hcl", body)}, &stderr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("file %q: error = %v, want one containing %q", body, err, want)
		}
	}
}

// TestSIGHUPReload: a reload re-reads the file, applies the log level to
// the running logger and names the settings that need a restart; a file
// that became invalid changes nothing.
func TestSIGHUPReload(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, "s.hcl", "log_level = \"info\"\ngrpc_addr = \"127.0.0.1:9502\"\n")
	args := []string{"--config-file", path, "--node", "n1"}
	cfg, _, err := parseFlags(args, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: new(bytes.Buffer)})
	named := logger.Named("raft")
	var hooked []string
	r := &reloader{args: args, logger: logger, stderr: new(bytes.Buffer), current: cfg,
		hooks: []reloadHook{func(c server.Config, _ hclog.Logger) error { hooked = append(hooked, c.LogLevel); return nil }}}

	if err := os.WriteFile(path, []byte("log_level = \"debug\"\ngrpc_addr = \"127.0.0.1:9999\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	applied, restart, err := r.reload()
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if strings.Join(applied, ",") != "log_level=debug" || strings.Join(restart, ",") != "grpc_addr" {
		t.Errorf("reload applied %v, restart %v; want [log_level=debug], [grpc_addr]", applied, restart)
	}
	if !named.IsDebug() {
		t.Error("the named sub-logger is not at debug after the reload")
	}
	if strings.Join(hooked, ",") != "debug" {
		t.Errorf("hooks saw %v", hooked)
	}

	if err := os.WriteFile(path, []byte("log_lvl = \"trace\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.reload(); err == nil || !strings.Contains(err.Error(), "log_lvl") {
		t.Errorf("reload of a bad file = %v, want the unknown key named", err)
	}
	if !named.IsDebug() || named.IsTrace() {
		t.Error("a refused reload changed the log level")
	}
}

// TestDeployFiles checks deploy/ statically (docker build does not run
// here): the Dockerfile copies the binaries make release writes, runs as
// a non-root user on a distroless or scratch base with a /data volume;
// the systemd unit runs stored with the example config, which parses.
func TestDeployFiles(t *testing.T) {
	t.Parallel()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	docker := read("deploy/Dockerfile")
	makefile := read("Makefile")
	for what, re := range map[string]string{
		"a distroless or scratch base": `(?m)^FROM (gcr\.io/distroless/static\S*|scratch)\s*$`,
		"the release binary path":      `(?m)^COPY dist/linux_\$\{TARGETARCH\}/stored `,
		"a non-root USER":              `(?m)^USER [1-9][0-9]*(:[1-9][0-9]*)?\s*$`,
		"a /data volume":               `(?m)^VOLUME \["/data"\]`,
		"stored as entrypoint":         `(?m)^ENTRYPOINT \["/usr/local/bin/stored"\]`,
	} {
		if !regexp.MustCompile(re).MatchString(docker) {
			t.Errorf("deploy/Dockerfile lacks %s (%s)", what, re)
		}
	}
	if !strings.Contains(makefile, "out=$(DIST)/$${os}_$${arch}") || !strings.Contains(makefile, "CGO_ENABLED=0") {
		t.Error("make release no longer writes static binaries to dist/<os>_<arch>/, which deploy/Dockerfile copies")
	}
	unit := read("deploy/chainstore.service")
	for _, want := range []string{"ExecStart=/usr/local/bin/stored --config-file /etc/chainstore/stored.hcl", "User=chainstore", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(unit, want) {
			t.Errorf("deploy/chainstore.service lacks %q", want)
		}
	}
	cfg, _, err := parseFlags([]string{"--config-file", filepath.Join("..", "..", "deploy", "stored.hcl")}, new(bytes.Buffer))
	if err != nil {
		t.Fatalf("deploy/stored.hcl: %v", err)
	}
	if cfg.DataDir != "/var/lib/chainstore" || cfg.BootstrapExpect != 3 {
		t.Errorf("deploy/stored.hcl parsed as %+v", cfg)
	}
}
