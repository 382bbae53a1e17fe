package acl

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Resource is what a permission is about.
type Resource string

// Resources of the rule language.
const (
	ResourceService  Resource = "service"
	ResourceOperator Resource = "operator"
	ResourceACL      Resource = "acl"
)

// Level is the access a request needs.
type Level uint8

// Levels. Write implies read.
const (
	Read Level = iota + 1
	Write
)

// String implements fmt.Stringer.
func (l Level) String() string {
	if l == Write {
		return "write"
	}
	return "read"
}

// Permission is one access a request needs: service:read on "web",
// operator:write, acl:write.
type Permission struct {
	Resource Resource
	// Name is the service name; empty for operator and acl.
	Name  string
	Level Level
}

// ServiceRead is service:read on the service name.
func ServiceRead(name string) Permission { return Permission{ResourceService, name, Read} }

// ServiceWrite is service:write on the service name.
func ServiceWrite(name string) Permission { return Permission{ResourceService, name, Write} }

// OperatorRead and friends are the permissions without a name.
var (
	OperatorRead  = Permission{Resource: ResourceOperator, Level: Read}
	OperatorWrite = Permission{Resource: ResourceOperator, Level: Write}
	ACLRead       = Permission{Resource: ResourceACL, Level: Read}
	ACLWrite      = Permission{Resource: ResourceACL, Level: Write}
)

// String renders "service:read" (without the name).
func (p Permission) String() string { return fmt.Sprintf("%s:%s", p.Resource, p.Level) }

// ErrPermissionDenied is wrapped by every *DeniedError.
var ErrPermissionDenied = errors.New("permission denied")

// DeniedError reports the permission a token lacks. Its message is
// Consul's: Permission denied: token lacks permission 'service:read' on "admin".
type DeniedError struct{ Perm Permission }

func (e *DeniedError) Error() string {
	if e.Perm.Resource == ResourceService {
		return fmt.Sprintf("Permission denied: token lacks permission '%s' on %q", e.Perm, e.Perm.Name)
	}
	return fmt.Sprintf("Permission denied: token lacks permission '%s'", e.Perm)
}

// Unwrap makes errors.Is(err, ErrPermissionDenied) true.
func (e *DeniedError) Unwrap() error { return ErrPermissionDenied }

// Authorizer decides permissions for one token. Implementations are
// immutable and safe for concurrent use.
type Authorizer interface {
	Allowed(p Permission) bool
}

// Check returns nil if a allows p, otherwise a *DeniedError.
func Check(a Authorizer, p Permission) error {
	if a.Allowed(p) {
		return nil
	}
	return &DeniedError{Perm: p}
}

type staticAuthorizer bool

func (s staticAuthorizer) Allowed(Permission) bool { return bool(s) }

// AllowAll allows everything (ACLs disabled, or the global-management
// policy); DenyAll allows nothing.
var (
	AllowAll Authorizer = staticAuthorizer(true)
	DenyAll  Authorizer = staticAuthorizer(false)
)

// prefixRule is one merged service_prefix rule.
type prefixRule struct {
	prefix string
	access Access
}

// policyAuthorizer merges the rules of a token's policies.
type policyAuthorizer struct {
	exact    map[string]Access
	prefixes []prefixRule // longest prefix first
	operator Access
	acl      Access
	fallback Authorizer
}

// merge combines two rules of the same specificity: deny wins, then write
// over read.
func merge(a, b Access) Access {
	if a == AccessDeny || b == AccessDeny {
		return AccessDeny
	}
	return max(a, b)
}

// NewAuthorizer merges policies into one Authorizer. For a service the
// most specific rule decides: an exact service rule beats every prefix, a
// longer prefix beats a shorter one; rules of equal specificity from
// several policies are merged (deny wins, write beats read). Anything no
// rule covers is decided by fallback (DenyAll when ACLs default to deny,
// AllowAll when they default to allow). Service names compare
// case-insensitively, as entry names do.
func NewAuthorizer(fallback Authorizer, policies ...*Policy) Authorizer {
	a := &policyAuthorizer{exact: map[string]Access{}, fallback: fallback}
	pre := map[string]Access{}
	for _, p := range policies {
		if p == nil {
			continue
		}
		for _, r := range p.Services {
			name := strings.ToLower(r.Name)
			if r.Prefix {
				pre[name] = merge(pre[name], r.Policy)
			} else {
				a.exact[name] = merge(a.exact[name], r.Policy)
			}
		}
		a.operator = merge(a.operator, p.Operator)
		a.acl = merge(a.acl, p.ACL)
	}
	for p, acc := range pre {
		a.prefixes = append(a.prefixes, prefixRule{p, acc})
	}
	sort.Slice(a.prefixes, func(i, j int) bool {
		if len(a.prefixes[i].prefix) != len(a.prefixes[j].prefix) {
			return len(a.prefixes[i].prefix) > len(a.prefixes[j].prefix)
		}
		return a.prefixes[i].prefix < a.prefixes[j].prefix
	})
	return a
}

// grants reports whether acc allows level.
func grants(acc Access, l Level) bool {
	switch acc {
	case AccessWrite:
		return true
	case AccessRead:
		return l == Read
	}
	return false
}

func (a *policyAuthorizer) Allowed(p Permission) bool {
	var acc Access
	switch p.Resource {
	case ResourceService:
		acc = a.service(strings.ToLower(p.Name))
	case ResourceOperator:
		acc = a.operator
	case ResourceACL:
		acc = a.acl
	default:
		return false
	}
	if acc == AccessUnset {
		return a.fallback.Allowed(p)
	}
	return grants(acc, p.Level)
}

func (a *policyAuthorizer) service(name string) Access {
	if acc, ok := a.exact[name]; ok {
		return acc
	}
	for _, r := range a.prefixes {
		if strings.HasPrefix(name, r.prefix) {
			return r.access
		}
	}
	return AccessUnset
}
