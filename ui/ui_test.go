package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPagesServeTheApp(t *testing.T) {
	t.Parallel()
	h := Handler()
	index, err := fs.ReadFile(static, "static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"/ui/", "/ui/services", "/ui/services/", "/ui/chain/web", "/ui/chain/web-2.api",
		"/ui/entries", "/ui/entries/service-router", "/ui/entries/service-router/web", "/ui/peers",
	} {
		resp := get(t, h, http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", p, resp.StatusCode)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
		if got := body(t, resp); got != string(index) {
			t.Errorf("GET %s: body is not index.html (%d bytes)", p, len(got))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q does not restrict scripts and fetches to the server", p, csp)
		}
	}
}

func TestAssetsHaveContentTypes(t *testing.T) {
	t.Parallel()
	h := Handler()
	want := map[string]string{
		"/ui/assets/app.js":    "text/javascript; charset=utf-8",
		"/ui/assets/graph.js":  "text/javascript; charset=utf-8",
		"/ui/assets/style.css": "text/css; charset=utf-8",
		"/ui/assets/icon.svg":  "image/svg+xml",
	}
	for p, ct := range want {
		resp := get(t, h, http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", p, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Type"); got != ct {
			t.Errorf("GET %s: Content-Type %q, want %q", p, got, ct)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", p)
		}
		if len(body(t, resp)) == 0 {
			t.Errorf("GET %s: empty body", p)
		}
		// A second request with the ETag is answered 304.
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", p)
		}
		if r2 := get(t, h, http.MethodGet, p, map[string]string{"If-None-Match": etag}); r2.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: status %d, want 304", p, r2.StatusCode)
		}
	}
}

// Every file the page or a module names exists among the embedded assets,
// and none is fetched from another host.
func TestEmbeddedReferencesResolve(t *testing.T) {
	t.Parallel()
	h := Handler()
	refs := regexp.MustCompile(`(?:src|href)="(/ui/assets/[^"]+)"|from '\./([^']+)'`)
	external := regexp.MustCompile(`(?i)(?:src|href)="(?:https?:)?//|import\s.*from\s+'https?:|url\(\s*['"]?https?:`)
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s loads from another host: %s", p, m)
		}
		for _, m := range refs.FindAllSubmatch(b, -1) {
			ref := string(m[1])
			if ref == "" {
				ref = "/ui/assets/" + string(m[2])
			}
			if resp := get(t, h, http.MethodGet, ref, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("%s refers to %s, which answers %d", p, ref, resp.StatusCode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	t.Parallel()
	h := Handler()
	for _, p := range []string{"/ui/nope", "/ui/chain", "/ui/chain/", "/ui/chain/a/b", "/ui/entries/a/b/c", "/ui/assets/missing.js", "/ui/assets/", "/v1/config"} {
		resp := get(t, h, http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
		if b := body(t, resp); !strings.Contains(b, "no UI page at "+p) || !strings.Contains(b, "/ui/chain/SERVICE") {
			t.Errorf("GET %s: body %q does not name the page and the pages that exist", p, b)
		}
	}
	resp := get(t, h, http.MethodGet, "/ui", nil)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want 301 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = get(t, h, http.MethodPost, "/ui/services", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ui/services: %d Allow %q, want 405 with Allow: GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp = get(t, h, http.MethodHead, "/ui/assets/app.js", nil)
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
		t.Errorf("HEAD app.js: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	if b := body(t, resp); b != "" {
		t.Errorf("HEAD app.js: body of %d bytes", len(b))
	}
}

func TestUnknownExtensionIsRefused(t *testing.T) {
	t.Parallel()
	files := fstest.MapFS{
		"static/index.html":      {Data: []byte("<!doctype html>")},
		"static/assets/font.ttf": {Data: []byte("x")},
	}
	_, err := newHandler(files)
	if err == nil || !strings.Contains(err.Error(), `no content type for extension ".ttf"`) {
		t.Fatalf("newHandler with a .ttf asset: %v, want an error naming the extension", err)
	}
}
