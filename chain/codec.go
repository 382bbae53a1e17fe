package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
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
// (spec 1.1). A nil entry fails with `config entry is nil`. Errors are
// *ValidationError.
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
	ea, errA := normalizedEncoding(a)
	eb, errB := normalizedEncoding(b)
	if errA != nil || errB != nil {
		return false
	}
	return bytes.Equal(ea, eb)
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
