package chain

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHasJSONNumber(t *testing.T) {
	t.Parallel()
	for doc, want := range map[string]bool{
		`{"Kind":"service-defaults","Name":"web"}`:      false,
		`{"Kind":"service-defaults","Name":"web-1"}`:    false, // digits and '-' inside strings
		`{"Meta":{"k":"say \"1\" and \\"}, "On": true}`: false, // escaped quotes, escaped backslash
		`{"a":null,"b":false,"c":[true,{"d":"e"}]}`:     false,
		`{"Weight":50}`:    true,
		`{"x":-1}`:         true,
		`{"x":"\\","y":2}`: true, // the string ends after the escaped backslash
		`{"x":[ 1.5e3 ]}`:  true,
		`{"ConnectTimeout":"15s","Meta":{"n":"0"},"T":1e9}`: true,
	} {
		if got := hasJSONNumber([]byte(doc)); got != want {
			t.Errorf("hasJSONNumber(%s) = %v, want %v", doc, got, want)
		}
	}
}

// FuzzUnmarshalJSONObject: the json.Unmarshal shortcut of
// unmarshalJSONObject gives exactly what the json.Decoder path gives
// (same map, same error text) for any input.
func FuzzUnmarshalJSONObject(f *testing.F) {
	for _, s := range []string{
		`{"Kind":"service-defaults","Name":"web","Protocol":"http","Meta":{"a":"b"}}`,
		`{"kind":"service-splitter","name":"web","splits":[{"weight":90},{"weight":10,"service_subset":"v2"}]}`,
		`{"Kind":"proxy-defaults","Name":"global","Config":{"n":12345678901234567890,"f":1.0}}`,
		`{"Kind":"service-defaults","Name":"web"} {"x":"y"}`,
		`{"Kind":"service-defaults","Name":"web","Name":"other"}`,
		`{"Kind":"service-defaults","Name":"w\u00e9b","Meta":{"\ud800":"\xff"}}`,
		`{"a":"\\"}`,
		`{"a":`,
		`{}`,
		` {"a":[]} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow map[string]any
		errFast := unmarshalJSONObject(data, &fast)
		errSlow := decodeJSONObject(data, &slow)
		if (errFast == nil) != (errSlow == nil) || errFast != nil && errFast.Error() != errSlow.Error() {
			t.Fatalf("unmarshalJSONObject(%q) error %v, the Decoder path %v", data, errFast, errSlow)
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("unmarshalJSONObject(%q) differs from the Decoder path (-decoder +fast):\n%s", data, diff)
		}
	})
}
