package fsm

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/chain"
)

func TestCommandRoundTrip(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in   Command
		want Command
	}{
		"Upsert": {
			in:   Command{Op: OpUpsert, Entry: serviceDefaults("Web", "http")},
			want: Command{Op: OpUpsert, Entry: serviceDefaults("Web", "http"), Key: sdKey("web")},
		},
		"UpsertWithMatchingKey": {
			in:   Command{Op: OpUpsert, Entry: serviceDefaults("web", "http"), Key: sdKey("WEB")},
			want: Command{Op: OpUpsert, Entry: serviceDefaults("web", "http"), Key: sdKey("web")},
		},
		"UpsertCAS": {
			in:   Command{Op: OpUpsertCAS, Entry: selfSplitter("main"), CASIndex: 1 << 40},
			want: Command{Op: OpUpsertCAS, Entry: selfSplitter("main"), Key: chain.KeyOf(chain.KindServiceSplitter, "main"), CASIndex: 1 << 40},
		},
		"UpsertCASZero": {
			in:   Command{Op: OpUpsertCAS, Entry: resolver("r", redirectTo("x", ""))},
			want: Command{Op: OpUpsertCAS, Entry: resolver("r", redirectTo("x", "")), Key: chain.KeyOf(chain.KindServiceResolver, "r")},
		},
		"Delete": {
			in:   Command{Op: OpDelete, Key: chain.Key{Kind: "Service-Router", Name: "API"}},
			want: Command{Op: OpDelete, Key: chain.KeyOf(chain.KindServiceRouter, "api")},
		},
		"DeleteCAS": {
			in:   Command{Op: OpDeleteCAS, Key: sdKey("web"), CASIndex: 7},
			want: Command{Op: OpDeleteCAS, Key: sdKey("web"), CASIndex: 7},
		},
		"Noop": {
			in:   Command{Op: OpNoop},
			want: Command{Op: OpNoop},
		},
		"IgnorableFlagOnKnownOpIsStripped": {
			in:   Command{Op: OpUpsert | IgnoreUnknownFlag, Entry: serviceDefaults("a", "")},
			want: Command{Op: OpUpsert, Entry: serviceDefaults("a", ""), Key: sdKey("a")},
		},
		"ProxyDefaultsWithConfig": {
			in:   Command{Op: OpUpsert, Entry: proxyDefaults("http")},
			want: Command{Op: OpUpsert, Entry: proxyDefaults("http"), Key: chain.KeyOf(chain.KindProxyDefaults, "global")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, err := EncodeCommand(tc.in)
			if err != nil {
				t.Fatalf("EncodeCommand() = %v", err)
			}
			got, err := DecodeCommand(b)
			if err != nil {
				t.Fatalf("DecodeCommand() = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DecodeCommand(EncodeCommand(%v)) mismatch (-want +got):\n%s", tc.in.Op, diff)
			}
		})
	}
}

func TestNoopCarriesIgnoreFlag(t *testing.T) {
	t.Parallel()
	b := encode(t, Command{Op: OpNoop})
	if Op(b[0])&IgnoreUnknownFlag == 0 {
		t.Fatalf("EncodeCommand(noop) type byte = 0x%02x, want IgnoreUnknownFlag set", b[0])
	}
}

func TestEncodeCommandErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in   Command
		want error
	}{
		"UnknownOp":          {in: Command{Op: 0x3f}, want: ErrUnknownOp},
		"UpsertNoEntry":      {in: Command{Op: OpUpsert}, want: ErrMalformedCommand},
		"UpsertKeyMismatch":  {in: Command{Op: OpUpsert, Entry: serviceDefaults("a", ""), Key: sdKey("b")}, want: ErrMalformedCommand},
		"CASIndexOnUpsert":   {in: Command{Op: OpUpsert, Entry: serviceDefaults("a", ""), CASIndex: 3}, want: ErrMalformedCommand},
		"CASIndexOnDelete":   {in: Command{Op: OpDelete, Key: sdKey("a"), CASIndex: 3}, want: ErrMalformedCommand},
		"DeleteWithEntry":    {in: Command{Op: OpDelete, Key: sdKey("a"), Entry: serviceDefaults("a", "")}, want: ErrMalformedCommand},
		"DeleteNoName":       {in: Command{Op: OpDelete, Key: chain.Key{Kind: chain.KindServiceDefaults}}, want: ErrMalformedCommand},
		"DeleteUnknownKind":  {in: Command{Op: OpDelete, Key: chain.Key{Kind: "mesh", Name: "x"}}, want: ErrMalformedCommand},
		"NoopWithKey":        {in: Command{Op: OpNoop, Key: sdKey("a")}, want: ErrMalformedCommand},
		"DeleteCASNoKind":    {in: Command{Op: OpDeleteCAS, CASIndex: 1}, want: ErrMalformedCommand},
		"UpsertCASNilEntry":  {in: Command{Op: OpUpsertCAS, CASIndex: 1}, want: ErrMalformedCommand},
		"UnknownIgnorableOp": {in: Command{Op: 0x7e | IgnoreUnknownFlag}, want: ErrUnknownOp},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := EncodeCommand(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("EncodeCommand(%+v) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	t.Parallel()
	valid := encode(t, Command{Op: OpDeleteCAS, Key: sdKey("web"), CASIndex: 300})
	cases := map[string]struct {
		in     []byte
		want   error
		wantOp Op
	}{
		"Empty":              {in: nil, want: ErrMalformedCommand},
		"UnknownType":        {in: []byte{0x3f, 1, 2}, want: ErrUnknownOp, wantOp: 0x3f},
		"UnknownIgnorable":   {in: []byte{0xfe}, want: ErrUnknownOp, wantOp: 0xfe},
		"UpsertNoBody":       {in: []byte{byte(OpUpsert)}, want: ErrMalformedCommand, wantOp: OpUpsert},
		"UpsertBadJSON":      {in: append([]byte{byte(OpUpsert)}, `{"Kind":`...), want: ErrMalformedCommand, wantOp: OpUpsert},
		"UpsertUnknownKind":  {in: append([]byte{byte(OpUpsert)}, `{"Kind":"mesh","Name":"x"}`...), want: ErrMalformedCommand, wantOp: OpUpsert},
		"UpsertUnknownField": {in: append([]byte{byte(OpUpsert)}, `{"Kind":"service-defaults","Name":"x","Bogus":1}`...), want: ErrMalformedCommand, wantOp: OpUpsert},
		"UpsertCASNoIndex":   {in: []byte{byte(OpUpsertCAS)}, want: ErrMalformedCommand, wantOp: OpUpsertCAS},
		"UpsertCASOverflow":  {in: []byte{byte(OpUpsertCAS), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, want: ErrMalformedCommand, wantOp: OpUpsertCAS},
		"DeleteTruncated":    {in: valid[:len(valid)-1], want: ErrMalformedCommand, wantOp: OpDeleteCAS},
		"DeleteTrailing":     {in: append(append([]byte{}, valid...), 0), want: ErrMalformedCommand, wantOp: OpDeleteCAS},
		"DeleteHugeLength":   {in: []byte{byte(OpDelete), 0xff, 0xff, 0xff, 0xff, 0x0f}, want: ErrMalformedCommand, wantOp: OpDelete},
		"DeleteUnknownKind":  {in: []byte{byte(OpDelete), 4, 'm', 'e', 's', 'h', 1, 'x'}, want: ErrMalformedCommand, wantOp: OpDelete},
		"DeleteEmptyName":    {in: append([]byte{byte(OpDelete), 16}, "service-defaults\x00"...), want: ErrMalformedCommand, wantOp: OpDelete},
		"UpsertV1NoEntry":    {in: []byte{byte(wireUpsertV1)}, want: ErrMalformedCommand, wantOp: OpUpsert},
		"UpsertV1EmptyEntry": {in: []byte{byte(wireUpsertV1), 0x12, 0}, want: ErrMalformedCommand, wantOp: OpUpsert},
		"UpsertV1CASIndex":   {in: []byte{byte(wireUpsertV1), 0x08, 5, 0x12, 2, 0x0a, 0}, want: ErrMalformedCommand, wantOp: OpUpsert},
		"UpsertV1Unknown":    {in: []byte{byte(wireUpsertV1), 0x12, 4, 0x0a, 2, 0x38, 1}, want: ErrMalformedCommand, wantOp: OpUpsert},
		"UpsertV1Truncated":  {in: []byte{byte(wireUpsertCASV1), 0x12, 5, 0x0a, 3}, want: ErrMalformedCommand, wantOp: OpUpsertCAS},
		"NoopTrailing":       {in: []byte{byte(OpNoop | IgnoreUnknownFlag), 0}, want: ErrMalformedCommand, wantOp: OpNoop},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeCommand(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("DecodeCommand(%q) = %v, want %v", tc.in, err, tc.want)
			}
			if got.Op != tc.wantOp || got.Entry != nil || got.Key != (chain.Key{}) {
				t.Errorf("DecodeCommand(%q) = %+v, want only Op %v", tc.in, got, tc.wantOp)
			}
		})
	}
}
