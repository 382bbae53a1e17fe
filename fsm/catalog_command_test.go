package fsm

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/catalog"
)

// inst returns a valid instance of service with the given check TTL (0: no
// check).
func inst(id, service string, ttl time.Duration) *catalog.Instance {
	return &catalog.Instance{ID: id, Service: service, Address: "10.0.0.1", Port: 8080, Datacenter: "dc1", TTL: ttl}
}

// withInst returns a copy of in changed by mod.
func withInst(in *catalog.Instance, mod func(in *catalog.Instance)) *catalog.Instance {
	c := *in
	mod(&c)
	return &c
}

func registerCmd(in *catalog.Instance) Command { return Command{Op: OpRegister, Instance: in} }
func deregisterCmd(id string) Command          { return Command{Op: OpDeregister, InstanceID: id} }
func checkCmd(id string, st catalog.Health, out string) Command {
	return Command{Op: OpCheck, InstanceID: id, Status: st, Output: out}
}
func expireCmd(id string, cas uint64) Command {
	return Command{Op: OpCheckExpire, InstanceID: id, CASIndex: cas}
}

// opBytes returns the type byte of op followed by the parts.
func opBytes(op Op, parts ...[]byte) []byte {
	b := []byte{byte(op)}
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestCatalogCommandRoundTrip(t *testing.T) {
	t.Parallel()
	full := &catalog.Instance{
		ID: "web-1", Service: "web", Address: "web-1.internal", Port: 443,
		Meta: map[string]string{"version": "v2", "zone": "b"}, Tags: []string{"canary", "primary"},
		Datacenter: "dc2", TTL: 15 * time.Second,
	}
	cases := map[string]struct {
		in   Command
		want Command
	}{
		"RegisterMinimal":            {in: registerCmd(inst("a1", "a", 0)), want: registerCmd(inst("a1", "a", 0))},
		"RegisterFull":               {in: registerCmd(full), want: registerCmd(full)},
		"RegisterIgnorableFlagStrip": {in: Command{Op: OpRegister | IgnoreUnknownFlag, Instance: full}, want: registerCmd(full)},
		"Deregister":                 {in: deregisterCmd("web-1"), want: deregisterCmd("web-1")},
		"DeregisterUnicodeID":        {in: deregisterCmd("wéb-☃"), want: deregisterCmd("wéb-☃")},
		"CheckPassing":               {in: checkCmd("web-1", catalog.Passing, "all good"), want: checkCmd("web-1", catalog.Passing, "all good")},
		"CheckWarningNoOutput":       {in: checkCmd("web-1", catalog.Warning, ""), want: checkCmd("web-1", catalog.Warning, "")},
		"CheckCritical":              {in: checkCmd("web-1", catalog.Critical, "down\nfor real"), want: checkCmd("web-1", catalog.Critical, "down\nfor real")},
		"CheckExpire":                {in: expireCmd("web-1", 1<<40), want: expireCmd("web-1", 1<<40)},
		"CheckExpireZeroIndex":       {in: expireCmd("web-1", 0), want: expireCmd("web-1", 0)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, err := EncodeCommand(tc.in)
			if err != nil {
				t.Fatalf("EncodeCommand() = %v", err)
			}
			if Op(b[0])&IgnoreUnknownFlag != 0 || logicalOp(Op(b[0])) != tc.want.Op {
				t.Errorf("type byte = 0x%02x, want one for %v without IgnoreUnknownFlag (catalog ops are never ignorable)", b[0], tc.want.Op)
			}
			got, err := DecodeCommand(b)
			if err != nil {
				t.Fatalf("DecodeCommand() = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DecodeCommand(EncodeCommand(%v)) mismatch (-want +got):\n%s", tc.in.Op, diff)
			}
			// One encoding per command: re-encoding gives the same bytes.
			b2, err := EncodeCommand(got)
			if err != nil {
				t.Fatalf("re-EncodeCommand() = %v", err)
			}
			if string(b2) != string(b) {
				t.Errorf("re-encoding differs:\n got %q\nwant %q", b2, b)
			}
		})
	}
}

func TestCatalogDecodeCommandErrors(t *testing.T) {
	t.Parallel()
	// reg is a register in log format v0 (JSON body); regV1 in v1.
	regJSON, err := json.Marshal(inst("a1", "a", time.Second))
	if err != nil {
		t.Fatal(err)
	}
	reg := opBytes(OpRegister, regJSON)
	regV1 := encode(t, registerCmd(inst("a1", "a", time.Second)))
	dereg := encode(t, deregisterCmd("a1"))
	check := encode(t, checkCmd("a1", catalog.Passing, "ok"))
	expire := encode(t, expireCmd("a1", 300))
	str := func(s string) []byte { return appendString(nil, s) }
	hugeLen := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	overflow := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	plus := func(b []byte, tail ...byte) []byte { return append(append([]byte{}, b...), tail...) }

	cases := map[string]struct {
		in     []byte
		wantOp Op
	}{
		"RegisterNoBody":            {in: opBytes(OpRegister), wantOp: OpRegister},
		"RegisterBadJSON":           {in: opBytes(OpRegister, []byte(`{"ID":`)), wantOp: OpRegister},
		"RegisterNotAnObject":       {in: opBytes(OpRegister, []byte(`["a1"]`)), wantOp: OpRegister},
		"RegisterUnknownField":      {in: opBytes(OpRegister, []byte(`{"ID":"a1","Service":"a","Address":"x","Port":1,"Bogus":1}`)), wantOp: OpRegister},
		"RegisterStoredField":       {in: opBytes(OpRegister, []byte(`{"ID":"a1","Service":"a","Address":"x","Port":1,"Status":1}`)), wantOp: OpRegister},
		"RegisterTrailingGarbage":   {in: plus(reg, 'x'), wantOp: OpRegister},
		"RegisterTrailingObject":    {in: plus(reg, reg[1:]...), wantOp: OpRegister},
		"RegisterTrailingBrace":     {in: plus(reg, '}'), wantOp: OpRegister},
		"RegisterTrailingBracket":   {in: plus(reg, ']'), wantOp: OpRegister},
		"RegisterTrailingNewline":   {in: plus(reg, '\n'), wantOp: OpRegister},
		"RegisterTruncated":         {in: reg[:len(reg)-1], wantOp: OpRegister},
		"RegisterV1Truncated":       {in: regV1[:len(regV1)-1], wantOp: OpRegister},
		"RegisterV1UnknownField":    {in: plus(regV1, 0xf8, 0x01, 0x01), wantOp: OpRegister},
		"RegisterV1WrongWireType":   {in: opBytes(wireRegisterV1, []byte{0x0d, 1, 2, 3, 4}), wantOp: OpRegister},
		"DeregisterNoBody":          {in: opBytes(OpDeregister), wantOp: OpDeregister},
		"DeregisterEmptyID":         {in: opBytes(OpDeregister, str("")), wantOp: OpDeregister},
		"DeregisterHugeLength":      {in: opBytes(OpDeregister, hugeLen), wantOp: OpDeregister},
		"DeregisterTruncated":       {in: dereg[:len(dereg)-1], wantOp: OpDeregister},
		"DeregisterTrailing":        {in: plus(dereg, 0), wantOp: OpDeregister},
		"CheckEmptyID":              {in: opBytes(OpCheck, str(""), []byte{byte(catalog.Passing)}, str("")), wantOp: OpCheck},
		"CheckNoStatus":             {in: opBytes(OpCheck, str("a1")), wantOp: OpCheck},
		"CheckStatusZero":           {in: opBytes(OpCheck, str("a1"), []byte{0}, str("")), wantOp: OpCheck},
		"CheckStatusFour":           {in: opBytes(OpCheck, str("a1"), []byte{4}, str("")), wantOp: OpCheck},
		"CheckStatusFF":             {in: opBytes(OpCheck, str("a1"), []byte{0xff}, str("")), wantOp: OpCheck},
		"CheckNoOutput":             {in: opBytes(OpCheck, str("a1"), []byte{byte(catalog.Passing)}), wantOp: OpCheck},
		"CheckTruncatedOutput":      {in: check[:len(check)-1], wantOp: OpCheck},
		"CheckTrailing":             {in: plus(check, 0), wantOp: OpCheck},
		"CheckExpireEmptyID":        {in: opBytes(OpCheckExpire, str(""), binary.AppendUvarint(nil, 1)), wantOp: OpCheckExpire},
		"CheckExpireNoIndex":        {in: opBytes(OpCheckExpire, str("a1")), wantOp: OpCheckExpire},
		"CheckExpireIndexOverflow":  {in: opBytes(OpCheckExpire, str("a1"), overflow), wantOp: OpCheckExpire},
		"CheckExpireTrailing":       {in: plus(expire, 0), wantOp: OpCheckExpire},
		"CheckExpireTruncatedIndex": {in: expire[:len(expire)-1], wantOp: OpCheckExpire},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeCommand(tc.in)
			if !errors.Is(err, ErrMalformedCommand) {
				t.Fatalf("DecodeCommand(%q) = %v, want %v", tc.in, err, ErrMalformedCommand)
			}
			if diff := cmp.Diff(Command{Op: tc.wantOp}, got); diff != "" {
				t.Errorf("DecodeCommand(%q) returned more than the op (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

// TestCatalogMalformedCommandIsRejectedByApply checks that a catalog command
// that does not decode reaches Apply as a deterministic rejection that
// changes nothing.
func TestCatalogMalformedCommandIsRejectedByApply(t *testing.T) {
	t.Parallel()
	reg := encode(t, registerCmd(inst("a1", "a", 0)))
	cases := map[string][]byte{
		"RegisterTrailingBrace": append(append([]byte{}, reg...), '}'),
		"RegisterUnknownField":  opBytes(OpRegister, []byte(`{"ID":"a1","Service":"a","Address":"x","Port":1,"Bogus":1}`)),
		"CheckBadStatus":        opBytes(OpCheck, appendString(nil, "a1"), []byte{9}, appendString(nil, "")),
		"DeregisterEmptyID":     opBytes(OpDeregister, appendString(nil, "")),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.mustRegister(inst("a1", "a", time.Second))
			before := captureCatalog(h, "a")
			r := asResult(t, h.f.Apply(h.log(data)))
			if r.Applied || !errors.Is(r.Err, ErrMalformedCommand) {
				t.Fatalf("Apply = %+v, want rejected with %v", r, ErrMalformedCommand)
			}
			before.checkUnchanged(t)
		})
	}
}

func TestCatalogEncodeCommandErrors(t *testing.T) {
	t.Parallel()
	a1 := inst("a1", "a", time.Second)
	cases := map[string]Command{
		// Entry fields on catalog ops.
		"RegisterWithEntry":      {Op: OpRegister, Instance: a1, Entry: serviceDefaults("a", "")},
		"RegisterWithKey":        {Op: OpRegister, Instance: a1, Key: sdKey("a")},
		"RegisterWithCASIndex":   {Op: OpRegister, Instance: a1, CASIndex: 1},
		"DeregisterWithEntry":    {Op: OpDeregister, InstanceID: "a1", Entry: serviceDefaults("a", "")},
		"DeregisterWithKey":      {Op: OpDeregister, InstanceID: "a1", Key: sdKey("a")},
		"DeregisterWithCASIndex": {Op: OpDeregister, InstanceID: "a1", CASIndex: 1},
		"CheckWithEntry":         {Op: OpCheck, InstanceID: "a1", Status: catalog.Passing, Entry: serviceDefaults("a", "")},
		"CheckWithCASIndex":      {Op: OpCheck, InstanceID: "a1", Status: catalog.Passing, CASIndex: 1},
		"CheckExpireWithKey":     {Op: OpCheckExpire, InstanceID: "a1", CASIndex: 1, Key: sdKey("a")},
		"CheckExpireWithEntry":   {Op: OpCheckExpire, InstanceID: "a1", CASIndex: 1, Entry: serviceDefaults("a", "")},
		// Catalog fields on the wrong catalog op.
		"RegisterNoInstance":      {Op: OpRegister},
		"RegisterWithInstanceID":  {Op: OpRegister, Instance: a1, InstanceID: "a1"},
		"RegisterWithStatus":      {Op: OpRegister, Instance: a1, Status: catalog.Passing},
		"RegisterWithOutput":      {Op: OpRegister, Instance: a1, Output: "ok"},
		"DeregisterNoID":          {Op: OpDeregister},
		"DeregisterWithInstance":  {Op: OpDeregister, InstanceID: "a1", Instance: a1},
		"DeregisterWithStatus":    {Op: OpDeregister, InstanceID: "a1", Status: catalog.Critical},
		"CheckNoID":               {Op: OpCheck, Status: catalog.Passing},
		"CheckNoStatus":           {Op: OpCheck, InstanceID: "a1"},
		"CheckBadStatus":          {Op: OpCheck, InstanceID: "a1", Status: 4},
		"CheckWithInstance":       {Op: OpCheck, InstanceID: "a1", Status: catalog.Passing, Instance: a1},
		"CheckExpireNoID":         {Op: OpCheckExpire, CASIndex: 1},
		"CheckExpireWithStatus":   {Op: OpCheckExpire, InstanceID: "a1", CASIndex: 1, Status: catalog.Critical},
		"CheckExpireWithOutput":   {Op: OpCheckExpire, InstanceID: "a1", CASIndex: 1, Output: "x"},
		"CheckExpireWithInstance": {Op: OpCheckExpire, InstanceID: "a1", CASIndex: 1, Instance: a1},
		"IgnorableRegisterNoInst": {Op: OpRegister | IgnoreUnknownFlag},
		"IgnorableCheckWithEntry": {Op: OpCheck | IgnoreUnknownFlag, InstanceID: "a1", Status: catalog.Passing, Key: sdKey("a")},
		// Catalog fields on entry ops.
		"UpsertWithInstance":      {Op: OpUpsert, Entry: serviceDefaults("a", ""), Instance: a1},
		"UpsertWithInstanceID":    {Op: OpUpsert, Entry: serviceDefaults("a", ""), InstanceID: "a1"},
		"UpsertCASWithStatus":     {Op: OpUpsertCAS, Entry: serviceDefaults("a", ""), Status: catalog.Passing},
		"DeleteWithOutput":        {Op: OpDelete, Key: sdKey("a"), Output: "x"},
		"DeleteCASWithInstanceID": {Op: OpDeleteCAS, Key: sdKey("a"), CASIndex: 1, InstanceID: "a1"},
		"NoopWithInstance":        {Op: OpNoop, Instance: a1},
		"NoopWithStatus":          {Op: OpNoop, Status: catalog.Warning},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, err := EncodeCommand(c)
			if !errors.Is(err, ErrMalformedCommand) {
				t.Fatalf("EncodeCommand(%+v) = %q, %v; want %v", c, b, err, ErrMalformedCommand)
			}
			if b != nil {
				t.Errorf("EncodeCommand returned %q with an error", b)
			}
		})
	}
}
