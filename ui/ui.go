// Package ui serves chainstore's web UI: a single-page application in
// plain JavaScript modules and CSS, embedded in the binary and served
// under Prefix ("/ui/") from the same port as the HTTP API. It makes no
// request outside the server that served it: the pages read the
// Consul-compatible HTTP API on the same origin (/v1/...), and the
// Content-Security-Policy header forbids every other source.
//
// Routes (GET and HEAD only):
//
//   - /ui redirects to /ui/.
//   - The application pages /ui/, /ui/services, /ui/chain/SERVICE,
//     /ui/entries, /ui/entries/KIND, /ui/entries/KIND/NAME and /ui/peers
//     all answer with index.html; the JavaScript reads the path and draws
//     the page.
//   - /ui/assets/FILE serves the embedded scripts, styles and icon with an
//     explicit content type and an ETag (the content hash).
//   - Anything else under /ui/ is a 404 naming the pages that exist.
//
// docs/ui.md describes the pages and how they follow changes with
// blocking queries.
//
// The package starts no goroutines; the handler holds only immutable data.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the UI is served under. Mount the handler there:
// mux.Handle(ui.Prefix, ui.Handler()) (and mux.Handle("/ui", ...) to
// redirect the bare path).
const Prefix = "/ui/"

//go:embed static
var static embed.FS

// contentTypes maps the extensions of the embedded files to their
// content type. It is explicit (not mime.TypeByExtension, which reads the
// host's mime tables) so the answer is the same on every machine; an
// embedded file with another extension makes Handler panic at start,
// which the package's test catches.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// csp allows the page to load scripts, styles and images only from the
// server itself and to fetch only from it: no CDN, no other host.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, read once at start.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// handler serves the UI.
type handler struct {
	index  asset
	assets map[string]asset // by name under static/assets
	start  time.Time        // Last-Modified for every file: the process start
}

// Handler returns the UI's http.Handler. It expects the full request
// path (mount it at Prefix without http.StripPrefix).
func Handler() http.Handler {
	h, err := newHandler(static)
	if err != nil {
		// The files are compiled in; this is a build defect the tests catch.
		panic(err)
	}
	return h
}

func newHandler(files fs.FS) (*handler, error) {
	h := &handler{assets: map[string]asset{}, start: time.Now().UTC().Truncate(time.Second)}
	index, err := load(files, "static/index.html")
	if err != nil {
		return nil, err
	}
	h.index = index
	err = fs.WalkDir(files, "static/assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		a, err := load(files, p)
		if err != nil {
			return err
		}
		h.assets[strings.TrimPrefix(p, "static/assets/")] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

func load(files fs.FS, name string) (asset, error) {
	body, err := fs.ReadFile(files, name)
	if err != nil {
		return asset{}, fmt.Errorf("ui: embedded file: %w", err)
	}
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		return asset{}, fmt.Errorf("ui: embedded file %s: no content type for extension %q", name, path.Ext(name))
	}
	sum := sha256.Sum256(body)
	return asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}, nil
}

// pages are the application's routes, relative to Prefix; a trailing
// "*" matches one non-empty path segment.
var pages = [][]string{
	{},
	{"services"},
	{"chain", "*"},
	{"entries"},
	{"entries", "*"},
	{"entries", "*", "*"},
	{"peers"},
}

// isPage reports whether rel (the path after Prefix) is one of pages.
func isPage(rel string) bool {
	rel = strings.TrimSuffix(rel, "/")
	var segs []string
	if rel != "" {
		segs = strings.Split(rel, "/")
	}
	for _, p := range pages {
		if len(p) != len(segs) {
			continue
		}
		ok := true
		for i, s := range p {
			if segs[i] == "" || (s != "*" && s != segs[i]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, fmt.Sprintf("method %s not allowed: the UI answers GET and HEAD", r.Method), http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	rel, ok := strings.CutPrefix(p, Prefix)
	if !ok {
		h.notFound(w, p)
		return
	}
	if name, ok := strings.CutPrefix(rel, "assets/"); ok {
		a, found := h.assets[name]
		if !found {
			h.notFound(w, p)
			return
		}
		h.serve(w, r, a, "no-cache")
		return
	}
	if !isPage(rel) {
		h.notFound(w, p)
		return
	}
	h.serve(w, r, h.index, "no-cache")
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, a asset, cacheControl string) {
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", cacheControl)
	hd.Set("ETag", a.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", csp)
	hd.Set("Referrer-Policy", "no-referrer")
	// ServeContent answers If-None-Match and HEAD, and sets Content-Length.
	http.ServeContent(w, r, "", h.start, bytes.NewReader(a.body))
}

func (h *handler) notFound(w http.ResponseWriter, p string) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.Error(w, fmt.Sprintf("no UI page at %s: the pages are %sservices, %schain/SERVICE, %sentries/KIND/NAME and %speers",
		p, Prefix, Prefix, Prefix, Prefix), http.StatusNotFound)
}
