// Package catalog defines the service catalog's data: service instances
// with their metadata and the health of their TTL checks, the rules a
// registration must follow, and how a chain target selects its instances
// (the resolver subset's Filter and OnlyPassing). It is pure: no clock, no
// I/O; fsm stores instances and rpc serves them.
package catalog

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chainstore/chainstore/chain"
)

// Limits of one instance registration.
const (
	MaxIDLen        = 256
	MaxServiceLen   = 256
	MaxAddressLen   = 256
	MaxMetaPairs    = 64
	MaxMetaKeyLen   = 128
	MaxMetaValueLen = 512
	MaxTags         = 64
	MaxTagLen       = 256
	MaxOutputLen    = 4096
	// MinTTL and MaxTTL bound a check's TTL.
	MinTTL = 100 * time.Millisecond
	MaxTTL = 24 * time.Hour
)

// Health is the status of an instance's check.
type Health uint8

// Health values. They are stored in the Raft log: never renumber them.
const (
	Passing  Health = 1
	Warning  Health = 2
	Critical Health = 3
)

// String returns Consul's name of the status.
func (h Health) String() string {
	switch h {
	case Passing:
		return chain.HealthPassing
	case Warning:
		return chain.HealthWarning
	case Critical:
		return chain.HealthCritical
	}
	return fmt.Sprintf("health(%d)", uint8(h))
}

// Valid reports whether h is one of the three statuses.
func (h Health) Valid() bool { return h >= Passing && h <= Critical }

// ErrUnknownHealth is returned by ParseHealth.
var ErrUnknownHealth = errors.New("unknown health status")

// ParseHealth accepts the check verbs of `storectl catalog check`
// (pass, warn, fail) and the status names (passing, warning, critical).
func ParseHealth(s string) (Health, error) {
	switch s {
	case "pass", chain.HealthPassing:
		return Passing, nil
	case "warn", chain.HealthWarning:
		return Warning, nil
	case "fail", chain.HealthCritical:
		return Critical, nil
	}
	return 0, fmt.Errorf("%w %q: want pass, warn or fail", ErrUnknownHealth, s)
}

// Instance is one registered instance of a service.
type Instance struct {
	ID         string
	Service    string
	Address    string
	Port       int
	Meta       map[string]string `json:",omitempty"`
	Tags       []string          `json:",omitempty"`
	Datacenter string
	// TTL is the TTL of the instance's check; 0 means no check: the
	// instance is always passing.
	TTL time.Duration `json:",omitempty"`
}

// Stored is an instance as the catalog holds it.
type Stored struct {
	Instance
	// Status and Output are the health of the check (Passing without a
	// check). A TTL check starts Critical.
	Status Health
	Output string `json:",omitempty"`
	// CreateIndex and ModifyIndex are the Raft indexes of the first and
	// the last write of the instance (registration or check update).
	CreateIndex, ModifyIndex uint64
}

// ValidationError names the field of an instance that is invalid.
type ValidationError struct {
	ID    string
	Field string
	Msg   string
}

func (e *ValidationError) Error() string {
	if e.ID == "" {
		return fmt.Sprintf("instance: %s: %s", e.Field, e.Msg)
	}
	return fmt.Sprintf("instance %q: %s: %s", e.ID, e.Field, e.Msg)
}

// Validate checks an instance for registration in datacenter dc. An empty
// Datacenter means dc; Normalize fills it in.
func (in *Instance) Validate(dc string) error {
	bad := func(field, format string, args ...any) error {
		return &ValidationError{ID: in.ID, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if err := checkName(in.ID, MaxIDLen); err != "" {
		return bad("ID", "%s", err)
	}
	if err := checkName(in.Service, MaxServiceLen); err != "" {
		return bad("Service", "%s", err)
	}
	if err := checkName(in.Address, MaxAddressLen); err != "" {
		return bad("Address", "%s", err)
	}
	if in.Port < 1 || in.Port > 65535 {
		return bad("Port", "%d is out of range 1-65535", in.Port)
	}
	if in.Datacenter != "" && in.Datacenter != dc {
		return bad("Datacenter", "%q is not this cluster's datacenter %q", in.Datacenter, dc)
	}
	if in.TTL != 0 && (in.TTL < MinTTL || in.TTL > MaxTTL) {
		return bad("TTL", "%s is out of range %s-%s", in.TTL, MinTTL, MaxTTL)
	}
	if len(in.Meta) > MaxMetaPairs {
		return bad("Meta", "%d pairs, at most %d", len(in.Meta), MaxMetaPairs)
	}
	// Sorted, so the same instance always names the same bad key.
	for _, k := range slices.Sorted(maps.Keys(in.Meta)) {
		v := in.Meta[k]
		if err := checkName(k, MaxMetaKeyLen); err != "" {
			return bad("Meta", "key %q: %s", k, err)
		}
		if len(v) > MaxMetaValueLen || !utf8.ValidString(v) {
			return bad("Meta", "value of %q: at most %d bytes of UTF-8", k, MaxMetaValueLen)
		}
	}
	if len(in.Tags) > MaxTags {
		return bad("Tags", "%d tags, at most %d", len(in.Tags), MaxTags)
	}
	for _, t := range in.Tags {
		if err := checkName(t, MaxTagLen); err != "" {
			return bad("Tags", "tag %q: %s", t, err)
		}
	}
	return nil
}

// checkName returns why s is not a valid identifier-like string, or "".
func checkName(s string, maxLen int) string {
	switch {
	case s == "":
		return "must be set"
	case len(s) > maxLen:
		return fmt.Sprintf("longer than %d bytes", maxLen)
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case slices.ContainsFunc([]rune(s), func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "contains white space or a control character"
	}
	return ""
}

// Normalize fills in defaults (the datacenter) and sorts the tags, so an
// instance has one stored form.
func (in *Instance) Normalize(dc string) {
	if in.Datacenter == "" {
		in.Datacenter = dc
	}
	if len(in.Meta) == 0 {
		in.Meta = nil
	}
	if len(in.Tags) == 0 {
		in.Tags = nil
	} else {
		in.Tags = slices.Clone(in.Tags)
		slices.Sort(in.Tags)
		in.Tags = slices.Compact(in.Tags)
	}
}

// InitialStatus is the health of a newly registered instance: passing
// without a check, critical with a TTL check until its first update.
func (in *Instance) InitialStatus() (Health, string) {
	if in.TTL == 0 {
		return Passing, ""
	}
	return Critical, "TTL check not yet updated"
}

// SameCheck reports whether two registrations of one ID define the same
// check, so a re-registration keeps the current health.
func SameCheck(a, b *Instance) bool { return a.TTL == b.TTL }

// ServiceInstance is the instance as a subset Filter sees it (Consul's
// health-row shape, see chain.ServiceInstance).
func (s *Stored) ServiceInstance() *chain.ServiceInstance {
	si := &chain.ServiceInstance{
		Node: chain.InstanceNode{Datacenter: s.Datacenter, Address: s.Address},
		Service: chain.InstanceService{
			ID: s.ID, Service: s.Service, Tags: s.Tags, Address: s.Address, Port: s.Port, Meta: s.Meta,
		},
	}
	if s.TTL != 0 {
		si.Checks = []chain.InstanceCheck{{
			CheckID: "service:" + s.ID, Name: "TTL check", Status: s.Status.String(), ServiceID: s.ID,
		}}
	}
	return si
}

// Healthy reports whether the instance may receive traffic for a target
// whose subset has onlyPassing set (passing only) or not (passing or
// warning).
func (s *Stored) Healthy(onlyPassing bool) bool {
	return s.Status == Passing || (s.Status == Warning && !onlyPassing)
}

// Select returns the instances of the target's service and datacenter
// that pass its subset Filter, in the order given. An instance's health
// does not select it: callers mark unhealthy instances (xDS keeps them
// listed as UNHEALTHY). The filter was validated when the resolver was
// written; an error here means an instance field the filter cannot read.
func Select(instances []*Stored, t *chain.Target) ([]*Stored, error) {
	var f *chain.Filter
	if t.Subset.Filter != "" {
		var err error
		if f, err = chain.ParseFilter(t.Subset.Filter); err != nil {
			return nil, fmt.Errorf("target %s: %w", t.ID, err)
		}
	}
	var out []*Stored
	for _, s := range instances {
		if s.Service != t.Service || (t.Datacenter != "" && s.Datacenter != t.Datacenter) {
			continue
		}
		if f != nil {
			ok, err := f.Match(s.ServiceInstance())
			if err != nil {
				return nil, fmt.Errorf("target %s: filter on instance %s: %w", t.ID, s.ID, err)
			}
			if !ok {
				continue
			}
		}
		out = append(out, s)
	}
	return out, nil
}
