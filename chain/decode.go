package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-viper/mapstructure/v2"
	"github.com/hashicorp/hcl"
	hclscanner "github.com/hashicorp/hcl/hcl/scanner"
	hcltoken "github.com/hashicorp/hcl/hcl/token"
)

// MaxNestingDepth bounds how deeply objects and lists may nest in a
// submitted document (and in the opaque proxy-defaults Config). Real
// entries nest fewer than ten levels; the bound keeps the recursive HCL
// parser and our own walks from exhausting the stack.
const MaxNestingDepth = 64

// Exact decode error texts (docs/discovery-chain.md, Decoding).
const (
	msgNoKind        = "Payload does not contain a kind/Kind key at the top level"
	msgKindNotString = "Kind value in payload is not a string"
)

// DecodeEntry decodes one config entry written in HCL or JSON, with the
// rules of docs/discovery-chain.md, Decoding. The format is picked the way
// hashicorp/hcl v1 picks it (JSON when the first non-space character is
// '{'); HCL is parsed by hcl v1 and JSON by encoding/json (see the note in the body). Then come
// the same steps as DecodeMap: kind detection, CamelCase or
// snake_case keys matched case-insensitively, HCL blocks collapsed to
// objects, weak typing, durations as "15s" or nanoseconds, and every
// unknown key rejected. The entry is not normalized or validated; call
// Prepare for that. Errors are *DecodeError.
func DecodeEntry(data []byte) (Entry, error) {
	var raw map[string]any
	parse := func() error {
		// The HCL parser is recursive: refuse deep nesting before it runs.
		if nestingDepth(data) > MaxNestingDepth {
			return errTooDeep
		}
		return hcl.Unmarshal(data, &raw)
	}
	if isJSONDocument(data) {
		// HCL v1's JSON parser splits an object inside a list into one
		// object per key ([{"Match":..,"Destination":..}] becomes two
		// routes), so JSON documents go through encoding/json instead.
		// Its depth limit and genericValue's bound the nesting.
		parse = func() error { return unmarshalJSONObject(data, &raw) }
	}
	if err := guard(parse); err != nil {
		if errors.Is(err, errTooDeep) {
			return nil, &DecodeError{Msg: errTooDeep.Error()}
		}
		return nil, &DecodeError{Msg: fmt.Sprintf("failed to parse config entry: %v", err)}
	}
	return DecodeMap(raw)
}

// unmarshalJSONObject decodes one JSON object, keeping numbers exact
// (json.Number, converted by genericValue) and rejecting trailing data.
//
// A document without a number (most entries: names, protocols, Meta) is
// decoded with one json.Unmarshal, which gives the same map (UseNumber
// only changes numbers) without a json.Decoder and its read buffers,
// which it grows by doubling (2 KB for a 512-byte entry, 13 KB for
// 4 KiB; the largest allocation of a write on the receiving server). Any
// error goes the Decoder way, so error messages do not change.
func unmarshalJSONObject(data []byte, out *map[string]any) error {
	if !hasJSONNumber(data) {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err == nil {
			*out = m
			return nil
		}
	}
	return decodeJSONObject(data, out)
}

// hasJSONNumber reports whether data, read as JSON text, may hold a
// number: a '-' or a digit outside a string. In valid JSON these begin
// nothing but numbers (the literals true, false and null have neither),
// so "false" is exact for any document json.Unmarshal accepts; invalid
// text may get either answer and fails to decode anyway.
func hasJSONNumber(data []byte) bool {
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString && c == '\\':
			i++ // the escaped byte cannot end the string
		case c == '"':
			inString = !inString
		case !inString && (c == '-' || '0' <= c && c <= '9'):
			return true
		}
	}
	return false
}

// decodeJSONObject is unmarshalJSONObject through a json.Decoder with
// UseNumber, for every document.
func decodeJSONObject(data []byte, out *map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the top-level object")
	}
	return nil
}

// DecodeMap decodes an entry from a generic map (e.g. a JSON body decoded
// with encoding/json, or HCL decoded into a map) with the same rules as
// DecodeEntry. A []map[string]any with one element is taken as an HCL block,
// i.e. one object, even inside the proxy-defaults Config. Numbers may be
// any Go integer or float type or json.Number; strings are made valid
// UTF-8 the way encoding/json would. raw is not modified. Errors are
// *DecodeError.
func DecodeMap(raw map[string]any) (Entry, error) {
	if raw == nil {
		return nil, &DecodeError{Msg: msgNoKind}
	}
	generic, err := genericValue(raw, 0)
	if err != nil {
		return nil, err
	}
	top := generic.(map[string]any)

	kindVal, ok := top["Kind"]
	if !ok {
		kindVal, ok = top["kind"]
	}
	if !ok {
		return nil, &DecodeError{Msg: msgNoKind}
	}
	kindStr, ok := kindVal.(string)
	if !ok {
		return nil, &DecodeError{Msg: msgKindNotString}
	}
	kind, err := ParseKind(kindStr)
	if err != nil {
		return nil, err
	}
	entry := newEntryOfKind(kind)

	w := &walker{}
	canonical := w.walkStruct(reflect.TypeOf(entry).Elem(), top, "", true)
	if len(w.errs) > 0 {
		return nil, &DecodeError{Msg: strings.Join(w.errs, "; ")}
	}
	canonical["Kind"] = string(kind)

	if fastDecodeServiceDefaults(canonical, entry) {
		return entry, nil
	}
	if err := guard(func() error { return weakDecode(canonical, entry) }); err != nil {
		return nil, &DecodeError{Msg: err.Error()}
	}
	return entry, nil
}

// newEntryOfKind returns an empty entry of kind k (which must be valid).
func newEntryOfKind(k Kind) Entry {
	switch k {
	case KindServiceDefaults:
		return &ServiceConfigEntry{Kind: k}
	case KindProxyDefaults:
		return &ProxyConfigEntry{Kind: k}
	case KindServiceRouter:
		return &ServiceRouterConfigEntry{Kind: k}
	case KindServiceSplitter:
		return &ServiceSplitterConfigEntry{Kind: k}
	case KindServiceResolver:
		return &ServiceResolverConfigEntry{Kind: k}
	}
	panic(fmt.Sprintf("chain: newEntryOfKind called with unchecked kind %q", k))
}

// guard runs fn and turns a panic inside third-party decoding code into an
// error, so hostile input can never crash a server.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal decoder failure: %v", r)
		}
	}()
	return fn()
}

// errTooDeep reports a document nested beyond MaxNestingDepth.
var errTooDeep = fmt.Errorf("document nests deeper than %d levels", MaxNestingDepth)

// nestingDepth returns the maximum bracket nesting of an HCL document
// (capped just above MaxNestingDepth), using HCL's own iterative scanner
// so brackets inside strings, heredocs and comments are not counted. It
// can panic on malformed input like the scanner itself; call it under
// guard.
func nestingDepth(data []byte) int {
	depth, maxDepth := 0, 0
	sc := hclscanner.New(data)
	sc.Error = func(hcltoken.Pos, string) {}
	for i := 0; i <= len(data) && maxDepth <= MaxNestingDepth; i++ { // each token consumes input
		switch sc.Scan().Type {
		case hcltoken.EOF:
			return maxDepth
		case hcltoken.LBRACE, hcltoken.LBRACK:
			depth++
			maxDepth = max(maxDepth, depth)
		case hcltoken.RBRACE, hcltoken.RBRACK:
			if depth > 0 {
				depth--
			}
		}
	}
	return maxDepth
}

// IsJSONDocument reports whether DecodeEntry reads data as JSON (its
// first non-space character is '{') rather than HCL.
func IsJSONDocument(data []byte) bool { return isJSONDocument(data) }

func isJSONDocument(data []byte) bool {
	for len(data) > 0 {
		r, w := utf8.DecodeRune(data)
		if !unicode.IsSpace(r) {
			return r == '{'
		}
		data = data[w:]
	}
	return false
}

// genericValue copies v into the plain JSON-like shapes the walker and
// mapstructure expect: map[string]any, []any, string, bool, int, float64
// and nil. HCL's []map[string]any blocks become one object (a single
// block) or []any (repeated blocks); json.Number becomes
// an int when it is one, else a float64. Unsupported or non-finite values
// and nesting beyond MaxNestingDepth are *DecodeError (this also stops
// self-referencing maps handed to DecodeMap).
func genericValue(v any, depth int) (any, error) {
	if depth > MaxNestingDepth {
		return nil, &DecodeError{Msg: errTooDeep.Error()}
	}
	switch t := v.(type) {
	case string:
		return validUTF8(t), nil
	case nil, bool, int:
		return t, nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, &DecodeError{Msg: fmt.Sprintf("invalid number %v", t)}
		}
		return t, nil
	case json.Number:
		return numberValue(string(t))
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			g, err := genericValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			if err := putKey(out, k, g); err != nil {
				return nil, err
			}
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			g, err := genericValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = g
		}
		return out, nil
	case []map[string]any:
		// HCL v1 decodes every object and block as a list of maps (and
		// literal lists as []any). One block is one object, here and in
		// the opaque Config alike; repeated blocks stay a list.
		if len(t) == 1 {
			return genericValue(t[0], depth+1)
		}
		out := make([]any, len(t))
		for i, e := range t {
			g, err := genericValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = g
		}
		return out, nil
	}
	return reflectValue(v, depth)
}

// reflectValue is genericValue for the types its type switch does not
// name: other integer and float widths, named string and bool types,
// pointers, interfaces, string-keyed maps, slices and arrays.
func reflectValue(v any, depth int) (any, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return intValue(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return float64(u), nil
		}
		return intValue(int64(u)), nil
	case reflect.Float32:
		return genericValue(rv.Float(), depth)
	case reflect.String:
		return validUTF8(rv.String()), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return genericValue(rv.Elem().Interface(), depth+1)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			g, err := genericValue(iter.Value().Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			if err := putKey(out, iter.Key().String(), g); err != nil {
				return nil, err
			}
		}
		return out, nil
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			g, err := genericValue(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = g
		}
		return out, nil
	}
	return nil, &DecodeError{Msg: fmt.Sprintf("unsupported value of type %T", v)}
}

// validUTF8 replaces invalid UTF-8 the way encoding/json would when the
// entry is encoded, so a decoded entry is already in its canonical form.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// putKey stores m[validUTF8(k)] = v, refusing two keys that only differed
// in invalid bytes (which one survived would depend on map order).
func putKey(m map[string]any, k string, v any) error {
	vk := validUTF8(k)
	if _, dup := m[vk]; dup {
		return &DecodeError{Msg: fmt.Sprintf("duplicate config key %q after replacing invalid UTF-8", vk)}
	}
	m[vk] = v
	return nil
}

// intValue returns i as an int (HCL's integer type) when it fits.
func intValue(i int64) any {
	if int64(int(i)) == i {
		return int(i)
	}
	return i
}

// numberValue converts a JSON number literal: integers to int, anything
// else to a finite float64.
func numberValue(s string) (any, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return intValue(i), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, &DecodeError{Msg: fmt.Sprintf("invalid number %s", s)}
	}
	return f, nil
}

// ---- schema-driven key translation ----

// walker rewrites a generic document into one whose struct keys are the
// exact Go field names, guided by the target type. It records every
// unknown or duplicated key instead of stopping at the first.
type walker struct {
	errs []string
}

var (
	durationType = reflect.TypeOf(Duration(0))
	anyMapType   = reflect.TypeOf(map[string]any(nil))
)

// ignoredTopLevelKey reports top-level keys that are accepted and dropped:
// the Raft indexes an entry read back from the API carries.
func ignoredTopLevelKey(k string) bool {
	switch strings.ToLower(k) {
	case "createindex", "modifyindex", "create_index", "modify_index":
		return true
	}
	return false
}

// fieldByKey maps a submitted key to a field name of struct type t: the
// field name in any case, or its snake_case spelling (Consul 1.6's per-kind
// snake_case keys, generalised to every multi-word field, as later Consul
// does per field; docs/discovery-chain.md, Decoding).
func fieldByKey(t reflect.Type, key string) (string, bool) {
	lk := strings.ToLower(key)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if strings.ToLower(f.Name) == lk || snakeCase(f.Name) == lk {
			return f.Name, true
		}
	}
	return "", false
}

// snakeCase turns a Go field name into its snake_case spelling:
// ServiceSubset -> service_subset, ExternalSNI -> external_sni,
// HTTP -> http.
func snakeCase(name string) string {
	var b strings.Builder
	runes := []rune(name)
	for i, r := range runes {
		if unicode.IsUpper(r) && i > 0 {
			prevLower := unicode.IsLower(runes[i-1]) || unicode.IsDigit(runes[i-1])
			nextLower := i+1 < len(runes) && unicode.IsLower(runes[i+1])
			if prevLower || (unicode.IsUpper(runes[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (w *walker) add(format string, args ...any) {
	w.errs = append(w.errs, fmt.Sprintf(format, args...))
}

// expectedMap records Consul's (mapstructure's) wording for a value that
// should have been an object: `'<path>' expected a map, got 'string'`.
func (w *walker) expectedMap(path string, v any) {
	w.add("'%s' expected a map, got '%s'", path, kindName(v))
}

// kindName names the JSON-like kind of a decoded value the way
// mapstructure's messages do (reflect kinds: string, bool, int, float64,
// slice, map), never a Go type with a package path.
func kindName(v any) string {
	if v == nil {
		return "invalid"
	}
	return reflect.TypeOf(v).Kind().String()
}

// walkStruct translates the keys of in for struct type t. path is the
// user's spelling of where in lies ("" at the top level).
func (w *walker) walkStruct(t reflect.Type, in map[string]any, path string, top bool) map[string]any {
	out := make(map[string]any, len(in))
	usedBy := make(map[string]string, len(in)) // field name -> key that set it
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if top && ignoredTopLevelKey(k) {
			continue
		}
		p := joinPath(path, k)
		name, ok := fieldByKey(t, k)
		if !ok {
			w.add("invalid config key %q", p)
			continue
		}
		if prev, dup := usedBy[name]; dup {
			w.add("duplicate config key %q (same field as %q)", p, joinPath(path, prev))
			continue
		}
		usedBy[name] = k
		f, _ := t.FieldByName(name)
		out[name] = w.walkValue(f.Type, in[k], p)
	}
	return out
}

// walkValue translates v for a field of type t.
func (w *walker) walkValue(t reflect.Type, v any, path string) any {
	if t == durationType || v == nil {
		return v
	}
	switch t.Kind() {
	case reflect.Pointer:
		return w.walkValue(t.Elem(), v, path)
	case reflect.Struct:
		obj, ok := w.object(v, path, false)
		if !ok {
			w.expectedMap(path, v)
			return nil
		}
		return w.walkStruct(t, obj, path, false)
	case reflect.Slice:
		et := t.Elem()
		if et.Kind() == reflect.Pointer {
			et = et.Elem()
		}
		if et.Kind() != reflect.Struct {
			return v // scalar arrays: mapstructure's weak decoding
		}
		switch list := v.(type) {
		case []any: // a real array: never collapsed
			out := make([]any, len(list))
			for i, e := range list {
				p := fmt.Sprintf("%s[%d]", path, i)
				if m, ok := e.(map[string]any); ok {
					out[i] = w.walkStruct(et, m, p, false)
				} else if e != nil {
					w.expectedMap(p, e)
				}
			}
			return out
		case map[string]any: // a single object where a list is expected
			return []any{w.walkStruct(et, list, path+"[0]", false)}
		}
		w.expectedMap(path+"[0]", v) // weak typing would wrap a scalar in a list
		return nil
	case reflect.Map:
		obj, ok := w.object(v, path, true)
		if !ok {
			w.expectedMap(path, v)
			return nil
		}
		if t == anyMapType {
			return obj // opaque (proxy-defaults Config): kept verbatim
		}
		et := t.Elem()
		if et.Kind() != reflect.Struct {
			return obj
		}
		out := make(map[string]any, len(obj))
		for k, e := range obj {
			p := joinPath(path, k)
			switch m, ok := w.object(e, p, false); {
			case ok:
				out[k] = w.walkStruct(et, m, p, false)
			case e == nil:
				out[k] = nil // a null element is the zero value, as before
			default:
				w.expectedMap(p, e)
			}
		}
		return out
	}
	return v
}

// object returns v as a map, collapsing HCL's one-element block lists. An
// empty list is an empty object. Several objects are merged when mergeable
// (map positions, e.g. repeated `subsets { ... }` blocks); at struct
// positions a list of several objects is an error.
func (w *walker) object(v any, path string, mergeable bool) (map[string]any, bool) {
	switch t := v.(type) {
	case map[string]any:
		return t, true
	case []any:
		switch {
		case len(t) == 0:
			return map[string]any{}, true
		case len(t) == 1:
			m, ok := t[0].(map[string]any)
			return m, ok
		case !mergeable:
			w.add("config key %q must be a single object, not a list of %d", path, len(t))
			return map[string]any{}, true
		}
		merged := make(map[string]any)
		for _, e := range t {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			for _, k := range sortedMapKeys(m) {
				if _, dup := merged[k]; dup {
					w.add("duplicate config key %q", joinPath(path, k))
					continue
				}
				merged[k] = m[k]
			}
		}
		return merged, true
	}
	return nil, false
}

// ---- weak typing ----

// weakDecode decodes a canonical map into entry with mapstructure:
// weakly typed input plus hooks for durations and range-checked numbers.
func weakDecode(canonical map[string]any, entry Entry) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.DecodeHookFuncType(weakHook),
		WeaklyTypedInput: true,
		ErrorUnused:      true,
		Result:           entry,
	})
	if err != nil {
		return fmt.Errorf("build decoder: %w", err)
	}
	if err := dec.Decode(canonical); err != nil {
		return consulDecodeError(err)
	}
	return nil
}

// consulDecodeError rewords mapstructure's errors the way Consul's decoder
// (mapstructure v1) words them, field path first and no Go type names
// (docs/discovery-chain.md, Decoding):
//
//	'<path>' expected a map, got 'string'
//	cannot parse '<path>' as bool: strconv.ParseBool: parsing "x": invalid syntax
//	'<path>' expected type 'string', got unconvertible type 'map'
//	error decoding '<path>': <hook error, e.g. time: invalid duration "x">
//
// Several errors are joined with "; " in the order mapstructure found them.
func consulDecodeError(err error) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	msgs := make([]string, 0, len(list))
	for _, e := range list {
		msgs = append(msgs, consulDecodeMessage(e))
	}
	return errors.New(strings.Join(msgs, "; "))
}

func consulDecodeMessage(err error) string {
	var de *mapstructure.DecodeError
	if !errors.As(err, &de) {
		return err.Error()
	}
	name, inner := de.Name(), de.Unwrap()
	var pe *mapstructure.ParseError
	var ue *mapstructure.UnconvertibleTypeError
	switch {
	case errors.As(inner, &pe):
		return fmt.Sprintf("cannot parse '%s' as %s: %v", name, parseKindName(pe.Expected.Kind()), pe.Err)
	case errors.As(inner, &ue):
		want := ue.Expected.Kind()
		if want == reflect.Map || want == reflect.Struct {
			return fmt.Sprintf("'%s' expected a map, got '%s'", name, kindName(ue.Value))
		}
		return fmt.Sprintf("'%s' expected type '%s', got unconvertible type '%s'", name, want, kindName(ue.Value))
	}
	var he *hookError
	if errors.As(inner, &he) {
		return fmt.Sprintf("error decoding '%s': %v", name, he.err)
	}
	return fmt.Sprintf("'%s' %v", name, inner)
}

// parseKindName is mapstructure v1's name for a scalar kind in
// "cannot parse ... as <kind>".
func parseKindName(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "uint"
	case reflect.Float32, reflect.Float64:
		return "float"
	}
	return k.String()
}

// hookError marks an error returned by weakHook (a bad duration or an
// out-of-range number), reported as `error decoding '<path>': ...`.
type hookError struct{ err error }

func (e *hookError) Error() string { return e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }

// fastDecodeServiceDefaults is a shortcut around weakDecode for the most
// common write: a service-defaults entry whose canonical map holds only
// string fields (Kind, Name, Protocol, ExternalSNI) and a non-empty Meta of
// string values. For such a map mapstructure does nothing but copy the
// strings (weakHook passes strings to string fields through unchanged) and
// build a new Meta map, which is what this does, without reflection. It
// reports false, leaving entry untouched, for anything else (another kind,
// another key, a non-string value, an empty Meta, which mapstructure keeps
// as an empty non-nil map), and the caller then runs weakDecode.
func fastDecodeServiceDefaults(canonical map[string]any, entry Entry) bool {
	e, ok := entry.(*ServiceConfigEntry)
	if !ok {
		return false
	}
	var out ServiceConfigEntry
	for k, v := range canonical {
		switch k {
		case "Kind", "Name", "Protocol", "ExternalSNI":
			str, ok := v.(string)
			if !ok {
				return false
			}
			switch k {
			case "Kind":
				out.Kind = Kind(str)
			case "Name":
				out.Name = str
			case "Protocol":
				out.Protocol = str
			default:
				out.ExternalSNI = str
			}
		case "Meta":
			m, ok := v.(map[string]any)
			if !ok || len(m) == 0 {
				return false
			}
			meta := make(map[string]string, len(m))
			for mk, mv := range m {
				str, ok := mv.(string)
				if !ok {
					return false
				}
				meta[mk] = str
			}
			out.Meta = meta
		default:
			return false
		}
	}
	*e = out
	return true
}

// errNotNumber is returned by numberOf for values that are not numbers.
var errNotNumber = errors.New("not a number")

// numberOf reads a number from an int, float or numeric string. Anything
// else is errNotNumber, so mapstructure can apply its own rules.
func numberOf(data any) (float64, bool, error) {
	switch t := data.(type) {
	case int:
		return float64(t), true, nil
	case int64:
		return float64(t), true, nil
	case float64:
		return t, t == math.Trunc(t), nil
	case string:
		s := strings.TrimSpace(t)
		if i, err := strconv.ParseInt(s, 0, 64); err == nil {
			return float64(i), true, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%q is not a number", t)
		}
		return f, f == math.Trunc(f), nil
	}
	return 0, false, errNotNumber
}

// weakHook converts durations ("15s" or integer nanoseconds) and checks
// that numbers fit their fields, instead of letting them wrap or turn into
// NaN/Inf silently.
func weakHook(from, to reflect.Type, data any) (any, error) {
	v, err := weakConvert(from, to, data)
	if err != nil {
		return nil, &hookError{err: err}
	}
	return v, nil
}

func weakConvert(_, to reflect.Type, data any) (any, error) {
	if to == durationType {
		return durationOf(data)
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int64, reflect.Uint32, reflect.Uint64, reflect.Float32:
	default:
		return data, nil
	}
	if data == "" {
		return data, nil // weak typing: "" is zero
	}
	f, integral, err := numberOf(data)
	if errors.Is(err, errNotNumber) {
		return data, nil
	}
	if err != nil {
		return nil, err
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%v is not a finite number", data)
	}
	switch to.Kind() {
	case reflect.Float32:
		if math.Abs(f) > math.MaxFloat32 {
			return nil, fmt.Errorf("%v is out of range", data)
		}
		return f, nil
	case reflect.Uint32:
		if !integral || f < 0 || f > math.MaxUint32 {
			return nil, fmt.Errorf("%v is not an integer between 0 and %d", data, uint32(math.MaxUint32))
		}
		return int64(f), nil
	case reflect.Uint64:
		if !integral || f < 0 || f >= math.MaxInt64 {
			return nil, fmt.Errorf("%v is not an integer between 0 and %d", data, int64(math.MaxInt64))
		}
		if i, ok := data.(int); ok {
			return i, nil
		}
		return int64(f), nil
	default:
		if !integral || f < math.MinInt64 || f >= math.MaxInt64 {
			return nil, fmt.Errorf("%v is not an integer", data)
		}
		if i, ok := data.(int); ok {
			return i, nil // exact, even beyond 2^53
		}
		return int64(f), nil
	}
}

// durationOf decodes a Duration from a Go duration string or an integer
// number of nanoseconds.
func durationOf(data any) (any, error) {
	switch t := data.(type) {
	case Duration:
		return t, nil
	case string:
		if t == "" {
			return Duration(0), nil
		}
		d, err := time.ParseDuration(t)
		if err != nil {
			return nil, err // time: invalid duration "x", as Consul reports it
		}
		return Duration(d), nil
	case int:
		return Duration(t), nil
	case int64:
		return Duration(t), nil
	case float64:
		if t != math.Trunc(t) || t < math.MinInt64 || t >= math.MaxInt64 {
			return nil, fmt.Errorf("time: invalid duration %v: not an integer number of nanoseconds", t)
		}
		return Duration(int64(t)), nil
	}
	return nil, fmt.Errorf("time: invalid duration %v", data)
}
