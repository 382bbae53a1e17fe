package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/catalog"
)

// The example of the command's doc comment, in both formats.
const (
	servicesJSON = `{"services": [
  {"id": "web-1", "service": "web", "address": "127.0.0.1", "port": 8080,
   "meta": {"version": "v1"}, "tags": ["a"], "ttl": "10s"},
  {"id": "db-1", "service": "db", "address": "10.0.0.9", "port": 5432, "datacenter": "dc1"}
]}`
	servicesHCL = `# one block per instance
services {
  id      = "web-1"
  service = "web"
  address = "127.0.0.1"
  port    = 8080
  meta    = { version = "v1" }
  tags    = ["a"]
  ttl     = "10s"
}

services {
  id         = "db-1"
  service    = "db"
  address    = "10.0.0.9"
  port       = 5432
  datacenter = "dc1"
}
`
	// The same as a list, with a meta block.
	servicesHCLList = `services = [
  {
    id = "web-1"
    service = "web"
    address = "127.0.0.1"
    port = 8080
    meta { version = "v1" }
    tags = ["a"]
    ttl = "10s"
  },
  { id = "db-1", service = "db", address = "10.0.0.9", port = 5432, datacenter = "dc1" },
]`
)

func TestParseServices(t *testing.T) {
	t.Parallel()
	want := []catalog.Instance{
		{ID: "web-1", Service: "web", Address: "127.0.0.1", Port: 8080, Meta: map[string]string{"version": "v1"}, Tags: []string{"a"}, TTL: 10 * time.Second},
		{ID: "db-1", Service: "db", Address: "10.0.0.9", Port: 5432, Datacenter: "dc1"},
	}
	for name, doc := range map[string]string{"JSON": servicesJSON, "HCL blocks": servicesHCL, "HCL list": servicesHCLList} {
		got, err := parseServices([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}

	// Optional keys may be left out, or given empty values.
	got, err := parseServices([]byte(`{"services":[{"id":"a","service":"s","address":"h","port":1,"meta":{},"tags":[],"ttl":"0s","datacenter":""}]}`))
	if err != nil || !cmp.Equal(got, []catalog.Instance{{ID: "a", Service: "s", Address: "h", Port: 1, Meta: map[string]string{}, Tags: []string{}}}) {
		t.Errorf("empty optional values: %+v, %v", got, err)
	}
	// HCL numbers written as floats are fine when whole.
	got, err = parseServices([]byte("services {\n id = \"a\"\n service = \"s\"\n address = \"h\"\n port = 80.0\n}\n"))
	if err != nil || len(got) != 1 || got[0].Port != 80 {
		t.Errorf("port 80.0: %+v, %v", got, err)
	}
}

func TestParseServicesErrors(t *testing.T) {
	t.Parallel()
	// inst is a valid JSON instance with some keys replaced (a value of
	// "" leaves the key out).
	inst := func(override map[string]string) string {
		keys := map[string]string{"id": `"web-1"`, "service": `"web"`, "address": `"127.0.0.1"`, "port": `8080`}
		for k, v := range override {
			keys[k] = v
		}
		var parts []string
		for _, k := range []string{"id", "service", "address", "port", "meta", "tags", "datacenter", "ttl", "name", "ID"} {
			if v := keys[k]; v != "" {
				parts = append(parts, `"`+k+`":`+v)
			}
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	one := func(override map[string]string) string { return `{"services":[` + inst(override) + `]}` }
	tests := map[string]struct{ doc, want string }{
		"bad JSON":            {`{"services": [`, "parse JSON: unexpected EOF"},
		"JSON trailing":       {`{"services": []} {}`, "parse JSON: unexpected data after the top-level object"},
		"bad HCL":             {`services {`, "parse HCL: "},
		"empty document":      {``, `no "services" list`},
		"unknown top key":     {`{"service": []}`, `unknown key "service" at the top level (want "services")`},
		"services not list":   {`{"services": {"id": "a"}}`, `"services" must be a list of instances`},
		"no instance":         {`{"services": []}`, `"services" lists no instance`},
		"instance not object": {`{"services": ["web-1"]}`, "services[0]: not an object"},
		"unknown key":         {one(map[string]string{"name": `"web"`}), `services[0] ("web-1"): unknown key "name" (want id, service, address, port, meta, tags, datacenter, ttl)`},
		"key case matters":    {one(map[string]string{"ID": `"web-1"`}), `services[0] ("web-1"): unknown key "ID"`},
		"missing port":        {one(map[string]string{"port": ""}), `services[0] ("web-1"): port: missing`},
		"missing id":          {one(map[string]string{"id": ""}), `services[0]: id: missing`},
		"port as string":      {one(map[string]string{"port": `"8080"`}), `services[0] ("web-1"): port: want a number, got the string "8080"`},
		"port with fraction":  {one(map[string]string{"port": `80.5`}), `services[0] ("web-1"): port: want a whole number, got 80.5`},
		"port out of range":   {one(map[string]string{"port": `70000`}), `services[0]: instance "web-1": Port: 70000 is out of range 1-65535`},
		"port zero":           {one(map[string]string{"port": `0`}), `services[0]: instance "web-1": Port: 0 is out of range 1-65535`},
		"id not string":       {one(map[string]string{"id": `7`}), `services[0]: id: want a string, got the number 7`},
		"empty address":       {one(map[string]string{"address": `""`}), `services[0]: instance "web-1": Address: must be set`},
		"id with space":       {one(map[string]string{"id": `"web 1"`}), `services[0]: instance "web 1": ID: contains white space or a control character`},
		"meta not object":     {one(map[string]string{"meta": `["a"]`}), `services[0] ("web-1"): meta: want an object of strings, got a list`},
		"meta value number":   {one(map[string]string{"meta": `{"version": 1}`}), `services[0] ("web-1"): meta: value of "version": want a string, got the number 1`},
		"tags not list":       {one(map[string]string{"tags": `"a,b"`}), `services[0] ("web-1"): tags: want a list of strings, got the string "a,b"`},
		"tag not string":      {one(map[string]string{"tags": `["a", null]`}), `services[0] ("web-1"): tags: [1]: want a string, got null`},
		"ttl number":          {one(map[string]string{"ttl": `10`}), `services[0] ("web-1"): ttl: want a duration such as "10s", got the number 10`},
		"ttl bad":             {one(map[string]string{"ttl": `"10 seconds"`}), `services[0] ("web-1"): ttl: "10 seconds" is not a duration such as "10s"`},
		"ttl too short":       {one(map[string]string{"ttl": `"10ms"`}), `services[0]: instance "web-1": TTL: 10ms is out of range 100ms-24h0m0s`},
		"duplicate id": {`{"services":[` + inst(nil) + "," + inst(map[string]string{"service": `"api"`}) + `]}`,
			`services[1]: instance "web-1" is listed twice (also services[0])`},
		"second instance bad": {`{"services":[` + inst(nil) + "," + inst(map[string]string{"id": `"web-2"`, "port": `-1`}) + `]}`,
			`services[1]: instance "web-2": Port: -1 is out of range 1-65535`},
		"HCL meta value number": {"services {\n id = \"a\"\n service = \"s\"\n address = \"h\"\n port = 1\n meta { v = 1 }\n}\n",
			`services[0] ("a"): meta: value of "v": want a string, got the number 1`},
		"HCL two meta blocks": {"services {\n id = \"a\"\n service = \"s\"\n address = \"h\"\n port = 1\n meta { v = \"1\" }\n meta { w = \"2\" }\n}\n",
			`services[0] ("a"): meta: want an object of strings, got an object`},
	}
	for name, tc := range tests {
		_, err := parseServices([]byte(tc.doc))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}

func TestLoadServicesFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := loadServicesFile(filepath.Join(dir, "missing.json")); err == nil || !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), maxServicesFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadServicesFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
	ok := filepath.Join(dir, "services.hcl")
	if err := os.WriteFile(ok, []byte(servicesHCL), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := loadServicesFile(ok); err != nil || len(got) != 2 {
		t.Errorf("services.hcl: %d instances, %v", len(got), err)
	}
}

func TestParseFlagsServices(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "services.json")
	bad := filepath.Join(dir, "bad.json")
	for path, doc := range map[string]string{good: servicesJSON, bad: `{"services":[{"id":"web-1"}]}`} {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"services only":          {args: []string{"--services", good}},
		"services and watch":     {args: []string{"--services", good, "--watch", "web", "--out", dir}},
		"neither":                {args: []string{"--addr", "h:1"}, wantErr: "nothing to do: give --watch (chains to watch), --services (instances to register) or both"},
		"out without watch":      {args: []string{"--services", good, "--out", dir}, wantErr: "--out and --exec need --watch"},
		"exec without watch":     {args: []string{"--services", good, "--exec", "true"}, wantErr: "--out and --exec need --watch"},
		"missing file":           {args: []string{"--services", filepath.Join(dir, "nope.json")}, wantErr: "--services " + filepath.Join(dir, "nope.json") + ": open "},
		"invalid file":           {args: []string{"--services", bad}, wantErr: "--services " + bad + `: services[0] ("web-1"): service: missing`},
		"bad backoffs":           {args: []string{"--services", good, "--min-backoff", "1s", "--max-backoff", "10ms"}, wantErr: "--min-backoff (1s) must be positive and at most --max-backoff (10ms)"},
		"bad deregister timeout": {args: []string{"--services", good, "--deregister-timeout", "0s"}, wantErr: "--deregister-timeout must be positive, got 0s"},
	}
	for name, tc := range tests {
		var stderr bytes.Buffer
		cfg, err := parseFlags(tc.args, &stderr)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want %q", name, err, tc.wantErr)
		case tc.wantErr == "" && len(cfg.Instances) != 2:
			t.Errorf("%s: %d instances loaded, want 2", name, len(cfg.Instances))
		}
	}
	// A usage error exits with 2 and names the file.
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--services", bad}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), `storeagent: --services `+bad+`: services[0] ("web-1"): service: missing`) {
		t.Errorf("run with an invalid file: exit %d, stderr %q", code, stderr.String())
	}
}
