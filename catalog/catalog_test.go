package catalog_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
)

// validInstance returns an instance that passes Validate("dc1"); each case
// breaks one field of it.
func validInstance() catalog.Instance {
	return catalog.Instance{
		ID:         "web-1",
		Service:    "web",
		Address:    "10.0.0.1",
		Port:       8080,
		Meta:       map[string]string{"version": "v1"},
		Tags:       []string{"canary"},
		Datacenter: "dc1",
		TTL:        10 * time.Second,
	}
}

// metaPairs returns n distinct valid meta pairs.
func metaPairs(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

// tagList returns n distinct valid tags.
func tagList(n int) []string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	return tags
}

func TestValidate(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		edit      func(in *catalog.Instance)
		wantField string // "" means valid
	}{
		"valid":                       {func(*catalog.Instance) {}, ""},
		"minimal: no meta, tags, TTL": {func(in *catalog.Instance) { in.Meta, in.Tags, in.TTL = nil, nil, 0 }, ""},
		"empty datacenter means dc":   {func(in *catalog.Instance) { in.Datacenter = "" }, ""},
		"non-ASCII ID":                {func(in *catalog.Instance) { in.ID = "wéb-1" }, ""},

		// ID.
		"empty ID":           {func(in *catalog.Instance) { in.ID = "" }, "ID"},
		"ID at max length":   {func(in *catalog.Instance) { in.ID = strings.Repeat("a", catalog.MaxIDLen) }, ""},
		"ID too long":        {func(in *catalog.Instance) { in.ID = strings.Repeat("a", catalog.MaxIDLen+1) }, "ID"},
		"ID with space":      {func(in *catalog.Instance) { in.ID = "web 1" }, "ID"},
		"ID with tab":        {func(in *catalog.Instance) { in.ID = "web\t1" }, "ID"},
		"ID with newline":    {func(in *catalog.Instance) { in.ID = "web-1\n" }, "ID"},
		"ID with NUL":        {func(in *catalog.Instance) { in.ID = "web\x001" }, "ID"},
		"ID with DEL":        {func(in *catalog.Instance) { in.ID = "web\x7f" }, "ID"},
		"ID with NBSP":       {func(in *catalog.Instance) { in.ID = "web\u00a01" }, "ID"},
		"ID with C1 control": {func(in *catalog.Instance) { in.ID = "web\u00851" }, "ID"},
		"ID invalid UTF-8":   {func(in *catalog.Instance) { in.ID = "web\xff" }, "ID"},
		"ID is only a space": {func(in *catalog.Instance) { in.ID = " " }, "ID"},
		"ID checked first":   {func(in *catalog.Instance) { in.ID, in.Service, in.Port = "", "", 0 }, "ID"},

		// Service.
		"empty service":         {func(in *catalog.Instance) { in.Service = "" }, "Service"},
		"service at max length": {func(in *catalog.Instance) { in.Service = strings.Repeat("s", catalog.MaxServiceLen) }, ""},
		"service too long":      {func(in *catalog.Instance) { in.Service = strings.Repeat("s", catalog.MaxServiceLen+1) }, "Service"},
		"service with space":    {func(in *catalog.Instance) { in.Service = "my web" }, "Service"},
		"service with control":  {func(in *catalog.Instance) { in.Service = "web\x1b" }, "Service"},
		"service invalid UTF-8": {func(in *catalog.Instance) { in.Service = "\xc3\x28" }, "Service"},

		// Address.
		"empty address":         {func(in *catalog.Instance) { in.Address = "" }, "Address"},
		"address at max length": {func(in *catalog.Instance) { in.Address = strings.Repeat("h", catalog.MaxAddressLen) }, ""},
		"address too long":      {func(in *catalog.Instance) { in.Address = strings.Repeat("h", catalog.MaxAddressLen+1) }, "Address"},
		"address with space":    {func(in *catalog.Instance) { in.Address = "10.0.0.1 " }, "Address"},
		"address with CR":       {func(in *catalog.Instance) { in.Address = "host\r" }, "Address"},
		"IPv6 address":          {func(in *catalog.Instance) { in.Address = "::1" }, ""},

		// Port.
		"port 0":        {func(in *catalog.Instance) { in.Port = 0 }, "Port"},
		"port 1":        {func(in *catalog.Instance) { in.Port = 1 }, ""},
		"port 65535":    {func(in *catalog.Instance) { in.Port = 65535 }, ""},
		"port 65536":    {func(in *catalog.Instance) { in.Port = 65536 }, "Port"},
		"negative port": {func(in *catalog.Instance) { in.Port = -1 }, "Port"},

		// Datacenter.
		"datacenter mismatch":  {func(in *catalog.Instance) { in.Datacenter = "dc2" }, "Datacenter"},
		"datacenter case only": {func(in *catalog.Instance) { in.Datacenter = "DC1" }, "Datacenter"},

		// TTL.
		"TTL 0 means no check": {func(in *catalog.Instance) { in.TTL = 0 }, ""},
		"TTL at minimum":       {func(in *catalog.Instance) { in.TTL = catalog.MinTTL }, ""},
		"TTL below minimum":    {func(in *catalog.Instance) { in.TTL = catalog.MinTTL - time.Nanosecond }, "TTL"},
		"TTL 1ns":              {func(in *catalog.Instance) { in.TTL = time.Nanosecond }, "TTL"},
		"TTL at maximum":       {func(in *catalog.Instance) { in.TTL = catalog.MaxTTL }, ""},
		"TTL above maximum":    {func(in *catalog.Instance) { in.TTL = catalog.MaxTTL + time.Nanosecond }, "TTL"},
		"negative TTL":         {func(in *catalog.Instance) { in.TTL = -time.Second }, "TTL"},

		// Meta.
		"meta at max pairs":   {func(in *catalog.Instance) { in.Meta = metaPairs(catalog.MaxMetaPairs) }, ""},
		"meta too many pairs": {func(in *catalog.Instance) { in.Meta = metaPairs(catalog.MaxMetaPairs + 1) }, "Meta"},
		"empty meta map":      {func(in *catalog.Instance) { in.Meta = map[string]string{} }, ""},
		"meta empty key":      {func(in *catalog.Instance) { in.Meta = map[string]string{"": "v"} }, "Meta"},
		"meta key at max length": {func(in *catalog.Instance) {
			in.Meta = map[string]string{strings.Repeat("k", catalog.MaxMetaKeyLen): "v"}
		}, ""},
		"meta key too long": {func(in *catalog.Instance) {
			in.Meta = map[string]string{strings.Repeat("k", catalog.MaxMetaKeyLen+1): "v"}
		}, "Meta"},
		"meta key with space":    {func(in *catalog.Instance) { in.Meta = map[string]string{"my key": "v"} }, "Meta"},
		"meta key with control":  {func(in *catalog.Instance) { in.Meta = map[string]string{"key\x00": "v"} }, "Meta"},
		"meta key invalid UTF-8": {func(in *catalog.Instance) { in.Meta = map[string]string{"\xff": "v"} }, "Meta"},
		"meta empty value":       {func(in *catalog.Instance) { in.Meta = map[string]string{"k": ""} }, ""},
		"meta value with space":  {func(in *catalog.Instance) { in.Meta = map[string]string{"k": "a b"} }, ""},
		"meta value at max": {func(in *catalog.Instance) {
			in.Meta = map[string]string{"k": strings.Repeat("v", catalog.MaxMetaValueLen)}
		}, ""},
		"meta value too long": {func(in *catalog.Instance) {
			in.Meta = map[string]string{"k": strings.Repeat("v", catalog.MaxMetaValueLen+1)}
		}, "Meta"},
		"meta value invalid UTF-8": {func(in *catalog.Instance) { in.Meta = map[string]string{"k": "v\xfe"} }, "Meta"},

		// Tags.
		"tags at max count":    {func(in *catalog.Instance) { in.Tags = tagList(catalog.MaxTags) }, ""},
		"too many tags":        {func(in *catalog.Instance) { in.Tags = tagList(catalog.MaxTags + 1) }, "Tags"},
		"empty tag":            {func(in *catalog.Instance) { in.Tags = []string{"a", ""} }, "Tags"},
		"tag at max length":    {func(in *catalog.Instance) { in.Tags = []string{strings.Repeat("t", catalog.MaxTagLen)} }, ""},
		"tag too long":         {func(in *catalog.Instance) { in.Tags = []string{strings.Repeat("t", catalog.MaxTagLen+1)} }, "Tags"},
		"tag with space":       {func(in *catalog.Instance) { in.Tags = []string{"blue green"} }, "Tags"},
		"tag with control":     {func(in *catalog.Instance) { in.Tags = []string{"blue\x07"} }, "Tags"},
		"tag invalid UTF-8":    {func(in *catalog.Instance) { in.Tags = []string{"\x80"} }, "Tags"},
		"duplicate tags valid": {func(in *catalog.Instance) { in.Tags = []string{"a", "a"} }, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := validInstance()
			tc.edit(&in)
			err := in.Validate("dc1")
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *catalog.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v (%T), want *catalog.ValidationError", err, err)
			}
			if ve.Field != tc.wantField {
				t.Errorf("Validate() Field = %q, want %q (error: %v)", ve.Field, tc.wantField, err)
			}
			if ve.ID != in.ID {
				t.Errorf("Validate() ID = %q, want %q", ve.ID, in.ID)
			}
			if ve.Msg == "" {
				t.Errorf("Validate() Msg is empty")
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		err  *catalog.ValidationError
		want string
	}{
		"with ID":    {&catalog.ValidationError{ID: "web-1", Field: "Port", Msg: "bad"}, `instance "web-1": Port: bad`},
		"without ID": {&catalog.ValidationError{Field: "ID", Msg: "must be set"}, "instance: ID: must be set"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestValidateMessages(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		edit func(in *catalog.Instance)
		want string
	}{
		"empty ID":   {func(in *catalog.Instance) { in.ID = "" }, "instance: ID: must be set"},
		"port":       {func(in *catalog.Instance) { in.Port = 70000 }, `instance "web-1": Port: 70000 is out of range 1-65535`},
		"datacenter": {func(in *catalog.Instance) { in.Datacenter = "dc2" }, `instance "web-1": Datacenter: "dc2" is not this cluster's datacenter "dc1"`},
		"TTL":        {func(in *catalog.Instance) { in.TTL = time.Millisecond }, `instance "web-1": TTL: 1ms is out of range 100ms-24h0m0s`},
		"tag":        {func(in *catalog.Instance) { in.Tags = []string{"a b"} }, `instance "web-1": Tags: tag "a b": contains white space or a control character`},
		"meta key":   {func(in *catalog.Instance) { in.Meta = map[string]string{"\xff": "v"} }, `instance "web-1": Meta: key "\xff": not valid UTF-8`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := validInstance()
			tc.edit(&in)
			err := in.Validate("dc1")
			if err == nil {
				t.Fatal("Validate() = nil, want error")
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseHealth(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in      string
		want    catalog.Health
		wantErr bool
	}{
		"pass":          {"pass", catalog.Passing, false},
		"warn":          {"warn", catalog.Warning, false},
		"fail":          {"fail", catalog.Critical, false},
		"passing":       {"passing", catalog.Passing, false},
		"warning":       {"warning", catalog.Warning, false},
		"critical":      {"critical", catalog.Critical, false},
		"empty":         {"", 0, true},
		"unknown verb":  {"ok", 0, true},
		"upper case":    {"PASS", 0, true},
		"padded":        {" pass", 0, true},
		"maintenance":   {"maintenance", 0, true},
		"numeric value": {"1", 0, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := catalog.ParseHealth(tc.in)
			if tc.wantErr {
				if !errors.Is(err, catalog.ErrUnknownHealth) {
					t.Fatalf("ParseHealth(%q) = %v, %v; want error wrapping ErrUnknownHealth", tc.in, got, err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)) {
					t.Errorf("ParseHealth(%q) error %q does not name the input", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHealth(%q) = %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseHealth(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestHealthStringAndValid(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		h         catalog.Health
		want      string
		wantValid bool
	}{
		"passing":  {catalog.Passing, chain.HealthPassing, true},
		"warning":  {catalog.Warning, chain.HealthWarning, true},
		"critical": {catalog.Critical, chain.HealthCritical, true},
		"zero":     {0, "health(0)", false},
		"four":     {4, "health(4)", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := tc.h.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if got := tc.h.Valid(); got != tc.wantValid {
				t.Errorf("Valid() = %v, want %v", got, tc.wantValid)
			}
			if tc.wantValid {
				// The status name parses back to the same value.
				if back, err := catalog.ParseHealth(tc.h.String()); err != nil || back != tc.h {
					t.Errorf("ParseHealth(%q) = %v, %v; want %v", tc.h.String(), back, err, tc.h)
				}
			}
		})
	}
	// The numbers are stored in the Raft log.
	if diff := cmp.Diff([]uint8{1, 2, 3}, []uint8{uint8(catalog.Passing), uint8(catalog.Warning), uint8(catalog.Critical)}); diff != "" {
		t.Errorf("Health values renumbered (-want +got):\n%s", diff)
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in   catalog.Instance
		dc   string
		want catalog.Instance
	}{
		"fills in datacenter": {
			in:   catalog.Instance{ID: "a"},
			dc:   "dc1",
			want: catalog.Instance{ID: "a", Datacenter: "dc1"},
		},
		"keeps datacenter": {
			in:   catalog.Instance{ID: "a", Datacenter: "dc1"},
			dc:   "dc1",
			want: catalog.Instance{ID: "a", Datacenter: "dc1"},
		},
		"sorts and dedupes tags": {
			in:   catalog.Instance{Tags: []string{"c", "a", "b", "a", "c", "c"}},
			dc:   "dc1",
			want: catalog.Instance{Tags: []string{"a", "b", "c"}, Datacenter: "dc1"},
		},
		"single tag": {
			in:   catalog.Instance{Tags: []string{"x"}},
			dc:   "dc1",
			want: catalog.Instance{Tags: []string{"x"}, Datacenter: "dc1"},
		},
		"empty tags become nil": {
			in:   catalog.Instance{Tags: []string{}},
			dc:   "dc1",
			want: catalog.Instance{Datacenter: "dc1"},
		},
		"empty meta becomes nil": {
			in:   catalog.Instance{Meta: map[string]string{}},
			dc:   "dc1",
			want: catalog.Instance{Datacenter: "dc1"},
		},
		"keeps meta and other fields": {
			in: catalog.Instance{
				ID: "web-1", Service: "web", Address: "10.0.0.1", Port: 80,
				Meta: map[string]string{"version": "v1"}, TTL: time.Second,
			},
			dc: "dc2",
			want: catalog.Instance{
				ID: "web-1", Service: "web", Address: "10.0.0.1", Port: 80,
				Meta: map[string]string{"version": "v1"}, Datacenter: "dc2", TTL: time.Second,
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := tc.in
			got.Normalize(tc.dc)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Normalize(%q) mismatch (-want +got):\n%s", tc.dc, diff)
			}
			// Nil, not merely empty: one stored form.
			if tc.want.Tags == nil && got.Tags != nil {
				t.Errorf("Tags = %#v, want nil", got.Tags)
			}
			if tc.want.Meta == nil && got.Meta != nil {
				t.Errorf("Meta = %#v, want nil", got.Meta)
			}
			// Normalizing twice changes nothing.
			again := got
			again.Normalize(tc.dc)
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("Normalize is not idempotent (-once +twice):\n%s", diff)
			}
		})
	}
}

func TestNormalizeDoesNotAliasTags(t *testing.T) {
	t.Parallel()
	caller := []string{"b", "a", "b", "c"}
	in := catalog.Instance{Tags: caller}
	in.Normalize("dc1")

	if diff := cmp.Diff([]string{"b", "a", "b", "c"}, caller); diff != "" {
		t.Errorf("Normalize modified the caller's slice (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, in.Tags); diff != "" {
		t.Errorf("Tags mismatch (-want +got):\n%s", diff)
	}
	// Writing to the normalized tags must not reach the caller's array.
	in.Tags[0] = "z"
	if caller[0] != "b" {
		t.Errorf("Normalized Tags share the caller's array: caller[0] = %q", caller[0])
	}
	// Nor the other way round, including the spare capacity.
	caller[1] = "y"
	if in.Tags[1] != "b" {
		t.Errorf("Normalized Tags share the caller's array: Tags[1] = %q", in.Tags[1])
	}
	in.Tags = append(in.Tags, "appended")
	if caller[3] != "c" {
		t.Errorf("append to normalized Tags overwrote caller[3] = %q", caller[3])
	}
}

func TestInitialStatus(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		ttl        time.Duration
		want       catalog.Health
		wantOutput bool
	}{
		"no check":  {0, catalog.Passing, false},
		"TTL check": {10 * time.Second, catalog.Critical, true},
		"min TTL":   {catalog.MinTTL, catalog.Critical, true},
		"max TTL":   {catalog.MaxTTL, catalog.Critical, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := catalog.Instance{TTL: tc.ttl}
			got, out := in.InitialStatus()
			if got != tc.want {
				t.Errorf("InitialStatus() status = %v, want %v", got, tc.want)
			}
			if (out != "") != tc.wantOutput {
				t.Errorf("InitialStatus() output = %q, want output: %v", out, tc.wantOutput)
			}
			if len(out) > catalog.MaxOutputLen {
				t.Errorf("InitialStatus() output is %d bytes, more than MaxOutputLen", len(out))
			}
		})
	}
}

func TestSameCheck(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		a, b catalog.Instance
		want bool
	}{
		"both without check":       {catalog.Instance{}, catalog.Instance{}, true},
		"same TTL":                 {catalog.Instance{TTL: time.Second}, catalog.Instance{TTL: time.Second, Port: 1}, true},
		"different TTL":            {catalog.Instance{TTL: time.Second}, catalog.Instance{TTL: 2 * time.Second}, false},
		"check added":              {catalog.Instance{}, catalog.Instance{TTL: time.Second}, false},
		"check removed":            {catalog.Instance{TTL: time.Second}, catalog.Instance{}, false},
		"other fields are ignored": {catalog.Instance{ID: "a", Tags: []string{"x"}}, catalog.Instance{ID: "b"}, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := catalog.SameCheck(&tc.a, &tc.b); got != tc.want {
				t.Errorf("SameCheck() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStoredHealthy(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		status               catalog.Health
		wantAny, wantPassing bool
	}{
		"passing":  {catalog.Passing, true, true},
		"warning":  {catalog.Warning, true, false},
		"critical": {catalog.Critical, false, false},
		"invalid":  {0, false, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := &catalog.Stored{Instance: catalog.Instance{ID: "a", TTL: time.Second}, Status: tc.status}
			if got := s.Healthy(false); got != tc.wantAny {
				t.Errorf("Healthy(false) = %v, want %v", got, tc.wantAny)
			}
			if got := s.Healthy(true); got != tc.wantPassing {
				t.Errorf("Healthy(true) = %v, want %v", got, tc.wantPassing)
			}
			// For a valid status, the catalog and the filter view agree.
			if tc.status.Valid() {
				si := s.ServiceInstance()
				if got := si.Healthy(false); got != tc.wantAny {
					t.Errorf("ServiceInstance().Healthy(false) = %v, want %v", got, tc.wantAny)
				}
				if got := si.Healthy(true); got != tc.wantPassing {
					t.Errorf("ServiceInstance().Healthy(true) = %v, want %v", got, tc.wantPassing)
				}
			}
		})
	}
}

func TestServiceInstance(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		s    catalog.Stored
		want *chain.ServiceInstance
	}{
		"without check": {
			s: catalog.Stored{
				Instance: catalog.Instance{
					ID: "web-1", Service: "web", Address: "10.0.0.1", Port: 8080,
					Meta: map[string]string{"version": "v1"}, Tags: []string{"canary"}, Datacenter: "dc1",
				},
				Status: catalog.Passing,
			},
			want: &chain.ServiceInstance{
				Node: chain.InstanceNode{Datacenter: "dc1", Address: "10.0.0.1"},
				Service: chain.InstanceService{
					ID: "web-1", Service: "web", Tags: []string{"canary"}, Address: "10.0.0.1", Port: 8080,
					Meta: map[string]string{"version": "v1"},
				},
			},
		},
		"with TTL check": {
			s: catalog.Stored{
				Instance: catalog.Instance{ID: "web-2", Service: "web", Address: "h", Port: 1, Datacenter: "dc2", TTL: time.Second},
				Status:   catalog.Warning,
				Output:   "slow",
			},
			want: &chain.ServiceInstance{
				Node:    chain.InstanceNode{Datacenter: "dc2", Address: "h"},
				Service: chain.InstanceService{ID: "web-2", Service: "web", Address: "h", Port: 1},
				Checks: []chain.InstanceCheck{{
					CheckID: "service:web-2", Name: "TTL check", Status: chain.HealthWarning, ServiceID: "web-2",
				}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, tc.s.ServiceInstance()); diff != "" {
				t.Errorf("ServiceInstance() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// stored builds a stored instance for Select.
func stored(id, service, dc string, ttl time.Duration, status catalog.Health, meta map[string]string, tags ...string) *catalog.Stored {
	return &catalog.Stored{
		Instance: catalog.Instance{
			ID: id, Service: service, Address: "10.0.0.1", Port: 8080,
			Meta: meta, Tags: tags, Datacenter: dc, TTL: ttl,
		},
		Status: status,
	}
}

func ids(ss []*catalog.Stored) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func TestSelect(t *testing.T) {
	t.Parallel()
	v1 := map[string]string{"version": "v1"}
	v2 := map[string]string{"version": "v2", "env": "prod"}
	instances := []*catalog.Stored{
		stored("web-3", "web", "dc1", 0, catalog.Passing, v2),
		stored("web-1", "web", "dc1", time.Second, catalog.Passing, v1, "canary"),
		stored("api-1", "api", "dc1", 0, catalog.Passing, v1, "canary"),
		stored("web-2", "web", "dc1", time.Second, catalog.Critical, v1),
		stored("web-dc2", "web", "dc2", time.Second, catalog.Warning, v1, "canary"),
		stored("web-4", "web", "dc1", time.Second, catalog.Warning, nil, "canary", "blue"),
	}
	cases := map[string]struct {
		target chain.Target
		want   []string
	}{
		"service and datacenter, order preserved": {
			target: chain.Target{Service: "web", Datacenter: "dc1"},
			want:   []string{"web-3", "web-1", "web-2", "web-4"},
		},
		"empty datacenter matches every datacenter": {
			target: chain.Target{Service: "web"},
			want:   []string{"web-3", "web-1", "web-2", "web-dc2", "web-4"},
		},
		"other datacenter": {
			target: chain.Target{Service: "web", Datacenter: "dc2"},
			want:   []string{"web-dc2"},
		},
		"other service": {
			target: chain.Target{Service: "api", Datacenter: "dc1"},
			want:   []string{"api-1"},
		},
		"unknown service": {
			target: chain.Target{Service: "db", Datacenter: "dc1"},
			want:   nil,
		},
		"unknown datacenter": {
			target: chain.Target{Service: "web", Datacenter: "dc9"},
			want:   nil,
		},
		"meta filter": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: "Service.Meta.version == v1"}},
			want:   []string{"web-1", "web-2"},
		},
		"meta filter, missing key does not match": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: "Service.Meta.version != v1"}},
			want:   []string{"web-3", "web-4"},
		},
		"flat ServiceMeta filter": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: "ServiceMeta.version == v2"}},
			want:   []string{"web-3"},
		},
		"tag filter": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: "canary in Service.Tags"}},
			want:   []string{"web-1", "web-4"},
		},
		"flat tag filter": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: "ServiceTags contains blue"}},
			want:   []string{"web-4"},
		},
		"ID filter": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: `Service.ID == "web-2"`}},
			want:   []string{"web-2"},
		},
		"ID filter on another service selects nothing": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: `Service.ID == "api-1"`}},
			want:   nil,
		},
		"node datacenter filter": {
			target: chain.Target{Service: "web", Subset: chain.ServiceResolverSubset{Filter: "Node.Datacenter == dc2"}},
			want:   []string{"web-dc2"},
		},
		"combined filter": {
			target: chain.Target{Service: "web", Subset: chain.ServiceResolverSubset{Filter: "Service.Meta.version == v1 and canary in Service.Tags"}},
			want:   []string{"web-1", "web-dc2"},
		},
		"checks filter: any passing": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: "any Checks as c { c.Status == passing }"}},
			want:   []string{"web-1"},
		},
		"checks filter: none critical (no check counts)": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: "all Checks as c { c.Status != critical }"}},
			want:   []string{"web-3", "web-1", "web-4"},
		},
		"checks filter: instances without a check": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: "Checks is empty"}},
			want:   []string{"web-3"},
		},
		"health does not select: OnlyPassing keeps unhealthy instances": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{OnlyPassing: true}},
			want:   []string{"web-3", "web-1", "web-2", "web-4"},
		},
		"filter matching nothing": {
			target: chain.Target{Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: "Service.Meta.version == v9"}},
			want:   nil,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tc.target.ID = "t1"
			got, err := catalog.Select(instances, &tc.target)
			if err != nil {
				t.Fatalf("Select() = %v", err)
			}
			if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
				t.Errorf("Select() mismatch (-want +got):\n%s", diff)
			}
			// The selected instances are the caller's, not copies.
			for _, s := range got {
				found := false
				for _, in := range instances {
					found = found || s == in
				}
				if !found {
					t.Errorf("Select() returned %s, not one of the given pointers", s.ID)
				}
			}
		})
	}
}

func TestSelectEmpty(t *testing.T) {
	t.Parallel()
	got, err := catalog.Select(nil, &chain.Target{ID: "t", Service: "web", Subset: chain.ServiceResolverSubset{Filter: "Service.Meta.version == v1"}})
	if err != nil || got != nil {
		t.Errorf("Select(nil) = %v, %v; want nil, nil", got, err)
	}
}

func TestSelectErrors(t *testing.T) {
	t.Parallel()
	instances := []*catalog.Stored{
		stored("web-1", "web", "dc1", 0, catalog.Passing, map[string]string{"version": "v1"}),
	}
	cases := map[string]struct {
		filter string
		want   string // substring of the error
	}{
		"invalid expression": {"Service.Meta.version ==", "target t1"},
		"unbalanced paren":   {"(Service.Meta.version == v1", "target t1"},
		"unknown field":      {"Service.Mta.version == v1", "target t1: filter on instance web-1"},
		"unknown flat field": {"ServiceMetas.version == v1", "target t1: filter on instance web-1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			target := &chain.Target{ID: "t1", Service: "web", Datacenter: "dc1", Subset: chain.ServiceResolverSubset{Filter: tc.filter}}
			got, err := catalog.Select(instances, target)
			if err == nil {
				t.Fatalf("Select(%q) = %v, nil; want error", tc.filter, ids(got))
			}
			if got != nil {
				t.Errorf("Select(%q) returned instances %v with an error", tc.filter, ids(got))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Select(%q) = %q, want it to contain %q", tc.filter, err, tc.want)
			}
		})
	}
}

func TestSelectInvalidFilterWithoutInstances(t *testing.T) {
	t.Parallel()
	// A filter that does not parse is an error even when no instance of
	// the service exists.
	target := &chain.Target{ID: "t1", Service: "web", Subset: chain.ServiceResolverSubset{Filter: "%%%"}}
	if _, err := catalog.Select(nil, target); err == nil {
		t.Error("Select(nil, invalid filter) = nil error, want error")
	}
}
