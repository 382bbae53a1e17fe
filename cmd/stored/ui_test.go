package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/server"
)

// stored serves the web UI on the HTTP API's port.
func TestMountUIServesTheUIOnTheHTTPPort(t *testing.T) {
	s := servertest.StartSingle(t)
	if err := mountUI(s.Server(), server.Config{HTTPAddr: s.HTTPAddr()}); err != nil {
		t.Fatalf("mountUI: %v", err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+s.HTTPAddr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	resp, body := get("/ui/chain/web")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, `<script type="module" src="/ui/assets/app.js">`) {
		t.Errorf("GET /ui/chain/web: %d %s, body %.80q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := get("/ui"); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want 301 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The API is still the API's.
	if resp, body := get("/v1/status/leader"); resp.StatusCode != http.StatusOK || !strings.Contains(body, ":") {
		t.Errorf("GET /v1/status/leader: %d %q", resp.StatusCode, body)
	}
}

// Without --http-addr there is nothing to mount on, and that is no error.
func TestMountUIWithoutHTTP(t *testing.T) {
	s := servertest.StartSingle(t, func(c *server.Config) { c.HTTPAddr = "" })
	if err := mountUI(s.Server(), server.Config{}); err != nil {
		t.Fatalf("mountUI without HTTP: %v", err)
	}
}
