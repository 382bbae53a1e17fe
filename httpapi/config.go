package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"

	"github.com/chainstore/chainstore/chain"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// configApply is PUT /v1/config: write the entry in the body (JSON, as
// consul/api sends it, or HCL), with ?cas=N as a check-and-set. It answers
// true or false. A body that does not decode is a 400 "Request decoding
// failed: ..."; the server's validation and graph errors are a 500 with
// the message (Consul 1.6).
func (s *Server) configApply(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDC(r); err != nil {
		return err
	}
	casIndex, cas, err := casParam(r)
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	// Decode here only to tell a bad body (400) from an entry the server
	// refuses (500); the services decode the same bytes the same way.
	if _, err := chain.DecodeEntry(body); err != nil {
		return badRequest("Request decoding failed: %v", err)
	}
	resp, err := s.backend.Apply(requestContext(r), &chainstorev1.ApplyRequest{Entry: body, Cas: cas, ModifyIndex: casIndex})
	if err != nil {
		return &serverError{err: err}
	}
	return writeJSON(w, resp.GetApplied())
}

// configGet is GET /v1/config/:kind/:name: the entry with its CreateIndex
// and ModifyIndex, or 404 `Config entry not found for "<kind>" / "<name>"`.
func (s *Server) configGet(w http.ResponseWriter, r *http.Request) error {
	opts, err := s.queryOptions(r)
	if err != nil {
		return err
	}
	kind, name := r.PathValue("kind"), r.PathValue("name")
	resp, err := s.backend.Get(requestContext(r), &chainstorev1.GetRequest{Kind: kind, Name: name, Options: opts})
	if err != nil {
		return err
	}
	setMeta(w, resp.GetMeta())
	if !resp.GetFound() {
		return &httpError{code: http.StatusNotFound, msg: fmt.Sprintf("Config entry not found for %q / %q", kind, name)}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(withIndexes(resp.GetEntry(), resp.GetCreateIndex(), resp.GetModifyIndex()))
	return nil
}

// configList is GET /v1/config/:kind: a JSON array of every entry of the
// kind, sorted by name.
func (s *Server) configList(w http.ResponseWriter, r *http.Request) error {
	opts, err := s.queryOptions(r)
	if err != nil {
		return err
	}
	resp, err := s.backend.List(requestContext(r), &chainstorev1.ListRequest{Kind: r.PathValue("kind"), Options: opts})
	if err != nil {
		return err
	}
	setMeta(w, resp.GetMeta())
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, e := range resp.GetEntries() {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(withIndexes(e.GetEntry(), e.GetCreateIndex(), e.GetModifyIndex()))
	}
	buf.WriteByte(']')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
	return nil
}

// configDelete is DELETE /v1/config/:kind/:name: {} on success, or with
// ?cas=N true or false.
func (s *Server) configDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDC(r); err != nil {
		return err
	}
	casIndex, cas, err := casParam(r)
	if err != nil {
		return err
	}
	kind, name := r.PathValue("kind"), r.PathValue("name")
	if _, err := chain.ParseKind(kind); err != nil {
		return badRequest("%v", err)
	}
	if name == "" {
		return &httpError{code: http.StatusNotFound, msg: "Must provide both a kind and name to delete"}
	}
	resp, err := s.backend.Delete(requestContext(r), &chainstorev1.DeleteRequest{Kind: kind, Name: name, Cas: cas, ModifyIndex: casIndex})
	if err != nil {
		return &serverError{err: err}
	}
	if cas {
		return writeJSON(w, resp.GetDeleted())
	}
	return writeJSON(w, struct{}{})
}

// configMissingKind answers GET and DELETE /v1/config/.
func (s *Server) configMissingKind(_ http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodDelete {
		return &httpError{code: http.StatusNotFound, msg: "Must provide both a kind and name to delete"}
	}
	return &httpError{code: http.StatusNotFound, msg: "Must provide either a kind or both kind and name"}
}

// configDeleteNoName answers DELETE /v1/config/:kind.
func (s *Server) configDeleteNoName(_ http.ResponseWriter, _ *http.Request) error {
	return &httpError{code: http.StatusNotFound, msg: "Must provide both a kind and name to delete"}
}

// withIndexes adds "CreateIndex" and "ModifyIndex" to an entry's
// canonical JSON object (chain.EncodeEntry output, which never has them).
func withIndexes(entry []byte, createIndex, modifyIndex uint64) []byte {
	entry = bytes.TrimSpace(entry)
	if len(entry) < 2 || entry[len(entry)-1] != '}' {
		return entry
	}
	out := make([]byte, 0, len(entry)+48)
	out = append(out, entry[:len(entry)-1]...)
	if len(entry) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"CreateIndex":`...)
	out = strconv.AppendUint(out, createIndex, 10)
	out = append(out, `,"ModifyIndex":`...)
	out = strconv.AppendUint(out, modifyIndex, 10)
	return append(out, '}')
}
