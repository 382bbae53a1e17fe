package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/rpc"
)

type response struct {
	code   int
	header http.Header
	body   []byte
}

// do sends one request with net/http and reads the whole answer.
func do(t *testing.T, method, url string, body []byte) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, url, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	base := "http://" + s.HTTPAddr()
	big := []byte(`{"Kind":"service-defaults","Name":"web","Meta":{"k":"` + strings.Repeat("x", rpc.DefaultMaxEntrySize) + `"}}`)
	cases := []struct {
		name, method, path string
		body               []byte
		code               int
		contains           string
	}{
		{"unknown endpoint", "GET", "/v1/nope", nil, 404, "unknown endpoint: GET /v1/nope"},
		{"unknown endpoint outside v1", "GET", "/favicon.ico", nil, 404, "unknown endpoint"},
		{"wrong method", "POST", "/v1/status/leader", nil, 405, "method POST not allowed on /v1/status/leader"},
		{"malformed JSON", "PUT", "/v1/config", []byte(`{"Kind":"service-defaults",`), 400, "Request decoding failed: failed to parse config entry"},
		{"unknown key", "PUT", "/v1/config", []byte(`{"Kind":"service-defaults","Name":"web","ProtocolX":"http"}`), 400, `Request decoding failed: invalid config key "ProtocolX"`},
		{"no kind", "PUT", "/v1/config", []byte(`{"Name":"web"}`), 400, "Payload does not contain a kind/Kind key at the top level"},
		{"body over the entry limit", "PUT", "/v1/config", big, 413, "Request body too large"},
		{"invalid cas", "PUT", "/v1/config?cas=abc", []byte(`{"Kind":"service-defaults","Name":"web"}`), 400, `Invalid cas "abc"`},
		{"validation error", "PUT", "/v1/config", []byte(`{"Kind":"service-splitter","Name":"web","Splits":[{"Weight":50}]}`), 500, "100"},
		{"invalid kind read", "GET", "/v1/config/bogus/web", nil, 400, "invalid config entry kind: bogus"},
		{"invalid kind list", "GET", "/v1/config/bogus", nil, 400, "invalid config entry kind: bogus"},
		{"missing kind", "GET", "/v1/config/", nil, 404, "Must provide either a kind or both kind and name"},
		{"delete without name", "DELETE", "/v1/config/service-defaults", nil, 404, "Must provide both a kind and name to delete"},
		{"delete invalid kind", "DELETE", "/v1/config/bogus/web", nil, 400, "invalid config entry kind: bogus"},
		{"missing entry", "GET", "/v1/config/service-defaults/nope", nil, 404, `Config entry not found for "service-defaults" / "nope"`},
		{"stale and consistent", "GET", "/v1/config/service-defaults?stale&consistent", nil, 400, "Cannot specify ?stale with ?consistent"},
		{"bad index", "GET", "/v1/config/service-defaults?index=x", nil, 400, `Invalid index "x"`},
		{"bad wait", "GET", "/v1/config/service-defaults?index=1&wait=soon", nil, 400, `Invalid wait time "soon"`},
		{"other datacenter", "GET", "/v1/config/service-defaults?dc=dc7", nil, 500, "No path to datacenter"},
		{"chain without name", "GET", "/v1/discovery-chain/", nil, 400, "Missing chain name"},
		{"chain body unknown field", "POST", "/v1/discovery-chain/web", []byte(`{"OverrideNothing":1}`), 400, `unknown field "OverrideNothing"`},
		{"chain body malformed", "POST", "/v1/discovery-chain/web", []byte(`{`), 400, "Request decoding failed"},
		{"register malformed", "PUT", "/v1/catalog/register", []byte(`[`), 400, "Request decoding failed"},
		{"register without service", "PUT", "/v1/catalog/register", []byte(`{"Node":"n","Address":"1.2.3.4"}`), 400, "must have a Service"},
		{"register invalid instance", "PUT", "/v1/catalog/register", []byte(`{"Service":{"ID":"a","Service":"","Port":1}}`), 400, "Service"},
		{"deregister without service", "PUT", "/v1/catalog/deregister", []byte(`{"Node":"n"}`), 400, "ServiceID must be set"},
		{"unsupported filter", "GET", "/v1/health/service/web?filter=x", nil, 400, "?filter is not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := do(t, tc.method, base+tc.path, tc.body)
			if r.code != tc.code || !strings.Contains(string(r.body), tc.contains) {
				t.Fatalf("%s %s = %d %q, want %d containing %q", tc.method, tc.path, r.code, r.body, tc.code, tc.contains)
			}
			if r.code >= 400 && !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
				t.Fatalf("error Content-Type = %q, want text/plain", r.header.Get("Content-Type"))
			}
		})
	}
}

func TestHTTPHealthEndpoints(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	base := "http://" + s.HTTPAddr()
	if r := do(t, "GET", base+"/v1/agent/health/live", nil); r.code != 200 {
		t.Fatalf("live = %d %s", r.code, r.body)
	}
	r := do(t, "GET", base+"/v1/agent/health/ready", nil)
	if r.code != 200 || !strings.Contains(string(r.body), `"Status":"ready"`) {
		t.Fatalf("ready = %d %s", r.code, r.body)
	}
}
