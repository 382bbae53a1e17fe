// Package flagfile applies a configuration file to a flag.FlagSet: every
// key of the file names a flag (snake_case key, kebab-case flag:
// grpc_addr sets --grpc-addr), so the file covers exactly the flags the
// binary has, including flags added later, with no table to keep in step.
// Flags given on the command line override the file; a key that names no
// flag is an error naming the key.
//
// The file is HCL (hashicorp/hcl v1) or JSON, chosen by its extension
// (.json is JSON, anything else HCL). Values are strings, numbers, booleans
// or lists (a list is joined with commas, the syntax of list flags such as
// --join). Nested blocks are refused.
package flagfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
)

// MaxFileSize bounds a configuration file.
const MaxFileSize = 1 << 20

// ErrUnknownKey reports a key that names no flag.
var ErrUnknownKey = errors.New("unknown configuration key")

// FlagName returns the flag a configuration key sets: grpc_addr ->
// grpc-addr.
func FlagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// Load reads the configuration file at path into key -> flag value text.
func Load(path string) (map[string]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("config file %s: %d bytes exceeds the %d-byte limit", path, st.Size(), MaxFileSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	raw := map[string]any{}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		err = decodeJSON(b, raw)
	} else {
		err = decodeHCL(b, raw)
	}
	if err != nil {
		return nil, fmt.Errorf("parse config file %s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		s, err := valueText(v)
		if err != nil {
			return nil, fmt.Errorf("config file %s: key %q: %w", path, k, err)
		}
		out[k] = s
	}
	return out, nil
}

// decodeJSON decodes one JSON object into raw, refusing a repeated key
// (encoding/json would keep the last silently) and trailing data.
func decodeJSON(b []byte, raw map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("want a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		if _, dup := raw[k]; dup {
			return fmt.Errorf("key %q is set twice", k)
		}
		raw[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// decodeHCL decodes an HCL body of key = value lines into raw, refusing a
// repeated key and nested blocks.
func decodeHCL(b []byte, raw map[string]any) error {
	f, err := hcl.ParseBytes(b)
	if err != nil {
		return err
	}
	list, ok := f.Node.(*ast.ObjectList)
	if !ok {
		return errors.New("want key = value lines")
	}
	seen := map[string]bool{}
	for _, item := range list.Items {
		if len(item.Keys) != 1 {
			return fmt.Errorf("line %d: nested blocks are not settings", item.Pos().Line)
		}
		k := item.Keys[0].Token.Value()
		key, _ := k.(string)
		if seen[key] {
			return fmt.Errorf("key %q is set twice (line %d)", key, item.Pos().Line)
		}
		seen[key] = true
	}
	return hcl.DecodeObject(&raw, f)
}

// valueText turns a decoded value into the text the flag parses.
func valueText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool, int, int64, float64, json.Number:
		return fmt.Sprint(x), nil
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, err := valueText(e)
			if err != nil {
				return "", err
			}
			if strings.Contains(s, ",") {
				return "", fmt.Errorf("list item %q contains a comma", s)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", fmt.Errorf("want a string, number, boolean or list, got %T", v)
	}
}

// Apply sets the flags of fs named by values' keys, except those set on
// the command line (fs must already be parsed) and those skip refuses
// (e.g. the --config-file flag itself or hidden test flags: a key naming
// them is unknown). It returns an error wrapping ErrUnknownKey for the
// first key (sorted) that names no flag, and the flag's own error for a
// bad value; then nothing is set.
func Apply(fs *flag.FlagSet, values map[string]string, skip func(name string) bool) error {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := FlagName(k)
		if k != strings.ToLower(k) || strings.Contains(k, "-") || fs.Lookup(name) == nil || (skip != nil && skip(name)) {
			return fmt.Errorf("%w %q (no flag --%s)", ErrUnknownKey, k, name)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// Check every value on a scratch copy first, so a bad value leaves fs
	// untouched.
	for _, k := range keys {
		f := fs.Lookup(FlagName(k))
		if set[f.Name] {
			continue
		}
		if err := checkValue(f, values[k]); err != nil {
			return fmt.Errorf("config key %q: invalid value %q: %w", k, values[k], err)
		}
	}
	for _, k := range keys {
		name := FlagName(k)
		if set[name] {
			continue
		}
		if err := fs.Set(name, values[k]); err != nil {
			return fmt.Errorf("config key %q: invalid value %q: %w", k, values[k], err)
		}
	}
	return nil
}

// checkValue parses s as f's type would, on a scratch flag, so Apply
// fails before it sets anything. Values of other kinds are checked by
// fs.Set itself.
func checkValue(f *flag.Flag, s string) error {
	getter, ok := f.Value.(flag.Getter)
	if !ok {
		return nil
	}
	scratch := flag.NewFlagSet("check", flag.ContinueOnError)
	scratch.SetOutput(new(bytes.Buffer))
	switch getter.Get().(type) {
	case bool:
		scratch.Bool("v", false, "")
	case int:
		scratch.Int("v", 0, "")
	case int64:
		scratch.Int64("v", 0, "")
	case uint:
		scratch.Uint("v", 0, "")
	case uint64:
		scratch.Uint64("v", 0, "")
	case float64:
		scratch.Float64("v", 0, "")
	case time.Duration:
		scratch.Duration("v", 0, "")
	default:
		return nil
	}
	return scratch.Set("v", s)
}
