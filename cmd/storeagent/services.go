package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/hcl"

	"github.com/chainstore/chainstore/catalog"
)

// maxServicesFileSize bounds the --services file.
const maxServicesFileSize = 4 << 20

// instanceKeys are the keys of one instance in a --services file, in the
// order errors list them.
var instanceKeys = []string{"id", "service", "address", "port", "meta", "tags", "datacenter", "ttl"}

// requiredKeys are the instance keys that must be present.
var requiredKeys = []string{"id", "service", "address", "port"}

// loadServicesFile reads and parses a --services file (see the command's
// doc comment for its format): every instance, validated by the rules the
// server applies (except the datacenter, which only the server knows).
func loadServicesFile(path string) ([]catalog.Instance, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxServicesFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxServicesFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxServicesFileSize)
	}
	return parseServices(data)
}

// parseServices parses the content of a --services file: JSON when its
// first non-space character is '{', HCL otherwise.
func parseServices(data []byte) ([]catalog.Instance, error) {
	var raw map[string]any
	if isJSONObject(data) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("parse JSON: %w", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, errors.New("parse JSON: unexpected data after the top-level object")
		}
	} else if err := hclUnmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse HCL: %w", err)
	}
	for k := range raw {
		if k != "services" {
			return nil, fmt.Errorf("unknown key %q at the top level (want \"services\")", k)
		}
	}
	list, ok := raw["services"]
	if !ok {
		return nil, errors.New(`no "services" list`)
	}
	items, ok := list.([]any)
	if !ok {
		// HCL gives a list of objects as []map[string]any.
		if objs, isObjs := list.([]map[string]any); isObjs {
			for _, m := range objs {
				items = append(items, m)
			}
			ok = true
		}
	}
	if !ok {
		return nil, errors.New(`"services" must be a list of instances`)
	}
	if len(items) == 0 {
		return nil, errors.New(`"services" lists no instance`)
	}
	out := make([]catalog.Instance, 0, len(items))
	seen := map[string]int{}
	for i, item := range items {
		in, err := instanceFromMap(item)
		if err != nil {
			return nil, fmt.Errorf("services[%d]%s: %w", i, idSuffix(item), err)
		}
		if err := in.Validate(in.Datacenter); err != nil {
			return nil, fmt.Errorf("services[%d]: %w", i, err)
		}
		if j, dup := seen[in.ID]; dup {
			return nil, fmt.Errorf("services[%d]: instance %q is listed twice (also services[%d])", i, in.ID, j)
		}
		seen[in.ID] = i
		out = append(out, in)
	}
	return out, nil
}

// hclUnmarshal is hcl.Unmarshal, turning a panic of the parser on
// malformed input into an error.
func hclUnmarshal(data []byte, out *map[string]any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal parser failure: %v", r)
		}
	}()
	return hcl.Unmarshal(data, out)
}

func isJSONObject(data []byte) bool {
	s := bytes.TrimLeftFunc(data, unicode.IsSpace)
	return len(s) > 0 && s[0] == '{'
}

// idSuffix names an instance in an error when it has a string id.
func idSuffix(item any) string {
	if m, ok := asObject(item); ok {
		if id, ok := m["id"].(string); ok && id != "" {
			return fmt.Sprintf(" (%q)", id)
		}
	}
	return ""
}

// asObject returns v as an object: a JSON object, or an HCL block or
// object value (which HCL decodes as a list of one object).
func asObject(v any) (map[string]any, bool) {
	switch o := v.(type) {
	case map[string]any:
		return o, true
	case []map[string]any:
		if len(o) == 1 {
			return o[0], true
		}
	}
	return nil, false
}

// instanceFromMap decodes one instance; its errors name the key.
func instanceFromMap(item any) (catalog.Instance, error) {
	var in catalog.Instance
	m, ok := asObject(item)
	if !ok {
		return in, errors.New("not an object")
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(instanceKeys, k) {
			return in, fmt.Errorf("unknown key %q (want %s)", k, strings.Join(instanceKeys, ", "))
		}
	}
	for _, k := range requiredKeys {
		if _, ok := m[k]; !ok {
			return in, fmt.Errorf("%s: missing", k)
		}
	}
	var err error
	str := func(key string, p *string) {
		if v, ok := m[key]; ok && err == nil {
			if *p, ok = v.(string); !ok {
				err = fmt.Errorf("%s: want a string, got %s", key, describe(v))
			}
		}
	}
	str("id", &in.ID)
	str("service", &in.Service)
	str("address", &in.Address)
	str("datacenter", &in.Datacenter)
	if err != nil {
		return in, err
	}
	if in.Port, err = wholeNumber(m["port"]); err != nil {
		return in, fmt.Errorf("port: %w", err)
	}
	if v, ok := m["meta"]; ok {
		if in.Meta, err = stringMap(v); err != nil {
			return in, fmt.Errorf("meta: %w", err)
		}
	}
	if v, ok := m["tags"]; ok {
		if in.Tags, err = stringList(v); err != nil {
			return in, fmt.Errorf("tags: %w", err)
		}
	}
	if v, ok := m["ttl"]; ok {
		s, isString := v.(string)
		if !isString {
			return in, fmt.Errorf("ttl: want a duration such as \"10s\", got %s", describe(v))
		}
		if in.TTL, err = time.ParseDuration(s); err != nil {
			return in, fmt.Errorf("ttl: %q is not a duration such as \"10s\"", s)
		}
	}
	return in, nil
}

// wholeNumber decodes an integer: a JSON number (json.Number) or an HCL
// one (int, or float64 when written with a fraction or exponent).
func wholeNumber(v any) (int, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil || i < math.MinInt32 || i > math.MaxInt32 {
			return 0, fmt.Errorf("want a whole number, got %s", n)
		}
		return int(i), nil
	case int:
		return n, nil
	case int64:
		if n < math.MinInt32 || n > math.MaxInt32 {
			return 0, fmt.Errorf("want a whole number, got %d", n)
		}
		return int(n), nil
	case float64:
		if n != math.Trunc(n) || n < math.MinInt32 || n > math.MaxInt32 {
			return 0, fmt.Errorf("want a whole number, got %v", n)
		}
		return int(n), nil
	}
	return 0, fmt.Errorf("want a number, got %s", describe(v))
}

// stringMap decodes an object whose values are strings.
func stringMap(v any) (map[string]string, error) {
	o, ok := asObject(v)
	if !ok {
		return nil, fmt.Errorf("want an object of strings, got %s", describe(v))
	}
	out := make(map[string]string, len(o))
	for _, k := range slices.Sorted(maps.Keys(o)) {
		s, ok := o[k].(string)
		if !ok {
			return nil, fmt.Errorf("value of %q: want a string, got %s", k, describe(o[k]))
		}
		out[k] = s
	}
	return out, nil
}

// stringList decodes a list of strings.
func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list of strings, got %s", describe(v))
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("[%d]: want a string, got %s", i, describe(e))
		}
		out = append(out, s)
	}
	return out, nil
}

// describe names the type of a decoded value in an error, with the value
// when it is short.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("%t", x)
	case json.Number, int, int64, float64:
		return fmt.Sprintf("the number %v", x)
	case []any:
		return "a list"
	case map[string]any, []map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
