package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"unicode/utf8"
)

// ErrNilEntry is wrapped by EncodeEntry when given a nil entry.
var ErrNilEntry = errors.New("config entry is nil")

// entryIsNil reports whether e is nil or a typed nil pointer.
func entryIsNil(e Entry) bool {
	if e == nil {
		return true
	}
	v := reflect.ValueOf(e)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// EncodeEntry returns the canonical JSON form of e: CamelCase field names,
// durations as Go duration strings ("15s"), empty fields omitted, map keys
// sorted, no HTML escaping. Kind is always written (from the entry's type).
// DecodeEntry and DecodeCanonical both decode it back to an equal entry.
func EncodeEntry(e Entry) ([]byte, error) {
	if entryIsNil(e) {
		return nil, fmt.Errorf("encode entry: %w", ErrNilEntry)
	}
	v := withKind(e)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode %s %q: %w", e.GetKind(), e.GetName(), err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// withKind returns a shallow copy of e with its Kind field set from its
// type, so an entry that was never normalized still encodes its kind.
func withKind(e Entry) any {
	switch t := e.(type) {
	case *ServiceConfigEntry:
		c := *t
		c.Kind = KindServiceDefaults
		return &c
	case *ProxyConfigEntry:
		c := *t
		c.Kind = KindProxyDefaults
		return &c
	case *ServiceRouterConfigEntry:
		c := *t
		c.Kind = KindServiceRouter
		return &c
	case *ServiceSplitterConfigEntry:
		c := *t
		c.Kind = KindServiceSplitter
		return &c
	case *ServiceResolverConfigEntry:
		c := *t
		c.Kind = KindServiceResolver
		return &c
	}
	return e
}

// DecodeCanonical is the fast, strict decoder for EncodeEntry output (used
// by the FSM and snapshots): encoding/json into the concrete type chosen by
// Kind, unknown fields rejected, trailing data rejected. Numbers inside the
// opaque proxy-defaults Config become int when integral (as HCL decodes
// them) and float64 otherwise. Errors are *DecodeError.
func DecodeCanonical(data []byte) (Entry, error) {
	if e, ok := decodeCanonicalFast(data); ok {
		return e, nil
	}
	return decodeCanonicalFull(data)
}

// decodeCanonicalFull is DecodeCanonical without the shortcut: the kind
// from a first parse, then the strict decode into that kind's type.
func decodeCanonicalFull(data []byte) (Entry, error) {
	var head struct {
		Kind *string
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, &DecodeError{Msg: fmt.Sprintf("failed to decode canonical entry: %v", err)}
	}
	if head.Kind == nil {
		return nil, &DecodeError{Msg: msgNoKind}
	}
	kind, err := ParseKind(*head.Kind)
	if err != nil {
		return nil, err
	}
	entry := newEntryOfKind(kind)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(entry); err != nil {
		return nil, &DecodeError{Msg: fmt.Sprintf("failed to decode canonical %s: %v", kind, err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &DecodeError{Msg: fmt.Sprintf("failed to decode canonical %s: trailing data", kind)}
	}
	if p, ok := entry.(*ProxyConfigEntry); ok && p.Config != nil {
		g, err := genericValue(p.Config, 0)
		if err != nil {
			return nil, err
		}
		p.Config = g.(map[string]any)
	}
	return entry, nil
}

// canonicalPrefix starts every EncodeEntry output: Kind is the first field
// of every entry type.
const canonicalPrefix = `{"Kind":"`

// decodeCanonicalFast decodes EncodeEntry output in one pass, taking the
// kind from the canonical prefix instead of a separate parse of the whole
// document for its Kind. It reports false whenever it cannot be sure that
// the full DecodeCanonical would return the same entry, and then the
// caller runs it (which also produces the exact error for bad input).
//
// Why the answer is the same when it reports true: the decode succeeded,
// so data is one valid JSON object followed only by white space, every
// Kind key (matched as encoding/json matches keys) held a string and the
// last one, now in the entry's Kind field, equals the prefix's kind. The
// full path would read that same last value as the kind (a later null
// could make it read none: documents containing "null" anywhere are left
// to the full path), pick the same type and decode the same bytes into it.
func decodeCanonicalFast(data []byte) (Entry, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(canonicalPrefix))
	if !ok {
		return nil, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, false
	}
	kindStr := string(rest[:end])
	kind, err := ParseKind(kindStr)
	if err != nil || bytes.Contains(data, []byte("null")) {
		return nil, false
	}
	entry := newEntryOfKind(kind)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(entry); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	if kindField(entry) != kindStr {
		return nil, false
	}
	if p, ok := entry.(*ProxyConfigEntry); ok && p.Config != nil {
		g, err := genericValue(p.Config, 0)
		if err != nil {
			return nil, false
		}
		p.Config = g.(map[string]any)
	}
	return entry, true
}

// kindField returns the Kind field of one of the five entry types as
// decoded (GetKind may answer from the type instead).
func kindField(e Entry) string {
	switch t := e.(type) {
	case *ServiceConfigEntry:
		return string(t.Kind)
	case *ProxyConfigEntry:
		return string(t.Kind)
	case *ServiceRouterConfigEntry:
		return string(t.Kind)
	case *ServiceSplitterConfigEntry:
		return string(t.Kind)
	case *ServiceResolverConfigEntry:
		return string(t.Kind)
	}
	return ""
}

// NewEntry returns the skeleton entry {Kind, Name} of a kind, e.g. to
// normalize a delete request. An unknown kind is a *DecodeError
// `invalid config entry kind: <kind>`.
func NewEntry(kind Kind, name string) (Entry, error) {
	k, err := ParseKind(string(kind))
	if err != nil {
		return nil, err
	}
	switch e := newEntryOfKind(k).(type) {
	case *ServiceConfigEntry:
		e.Name = name
		return e, nil
	case *ProxyConfigEntry:
		e.Name = name
		return e, nil
	case *ServiceRouterConfigEntry:
		e.Name = name
		return e, nil
	case *ServiceSplitterConfigEntry:
		e.Name = name
		return e, nil
	case *ServiceResolverConfigEntry:
		e.Name = name
		return e, nil
	}
	panic("chain: newEntryOfKind returned an unknown type")
}

// Prepare runs Normalize and then Validate: the write path's order
// (docs/discovery-chain.md, Validation). A nil entry fails with
// `config entry is nil`. Errors are *ValidationError.
func Prepare(e Entry) error {
	if entryIsNil(e) {
		kind := Kind("")
		if e != nil {
			kind = e.GetKind()
		}
		return errNilEntry(kind)
	}
	if err := e.Normalize(); err != nil {
		return err
	}
	return e.Validate()
}

// EqualEntries reports whether a and b have the same content once both are
// normalized: same kind and the same canonical encoding. Nil and empty
// maps or slices are therefore equal, and so are numbers in the opaque
// Config that only differ in Go type (int 5 versus float64 5). Neither
// argument is modified. Two nil entries are equal; an entry that cannot
// be encoded (e.g. a channel inside Config) equals nothing.
func EqualEntries(a, b Entry) bool {
	an, bn := entryIsNil(a), entryIsNil(b)
	if an || bn {
		return an && bn
	}
	if a.GetKind() != b.GetKind() {
		return false
	}
	if metaDiffers(metaOf(a), metaOf(b)) {
		return false
	}
	ea, errA := normalizedEncoding(a)
	eb, errB := normalizedEncoding(b)
	if errA != nil || errB != nil {
		return false
	}
	return bytes.Equal(ea, eb)
}

// metaOf returns e's Meta map (every kind has one).
func metaOf(e Entry) map[string]string {
	switch t := e.(type) {
	case *ServiceConfigEntry:
		return t.Meta
	case *ProxyConfigEntry:
		return t.Meta
	case *ServiceRouterConfigEntry:
		return t.Meta
	case *ServiceSplitterConfigEntry:
		return t.Meta
	case *ServiceResolverConfigEntry:
		return t.Meta
	}
	return nil
}

// metaDiffers is EqualEntries' cheap early answer: it reports true only
// when the Meta maps are certain to differ in the normalized encodings
// too. That holds because no Normalize touches Meta and a map of valid
// UTF-8 strings survives the JSON round trip of normalizedEncoding
// unchanged (nil and empty both encode as nothing). Invalid UTF-8 is
// replaced by U+FFFD when encoding, so two different invalid strings may
// still compare equal there: with any invalid string the answer is false
// (undecided) and the full comparison runs.
func metaDiffers(a, b map[string]string) bool {
	if len(a) != len(b) {
		return metaValid(a) && metaValid(b)
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || va != vb {
			return metaValid(a) && metaValid(b)
		}
	}
	return false
}

// metaValid reports whether every key and value of m is valid UTF-8.
func metaValid(m map[string]string) bool {
	for k, v := range m {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

// normalizedEncoding encodes a normalized copy of e. If normalization fails
// (e.g. a proxy-defaults entry with a bad name) the entry is compared as
// it is.
func normalizedEncoding(e Entry) ([]byte, error) {
	raw, err := EncodeEntry(e)
	if err != nil {
		return nil, err
	}
	c, err := DecodeCanonical(raw)
	if err != nil {
		return nil, err
	}
	if c.Normalize() != nil {
		return raw, nil
	}
	return EncodeEntry(c)
}
