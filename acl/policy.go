// Package acl is chainstore's access-control model: Consul's rule language
// (HCL or JSON) parsed into a Policy, and an Authorizer that answers
// "may this token read or write service S / the operator API / the ACL
// system" from one or more policies and a default policy. It is pure: no
// I/O, no goroutines, no clock. Tokens and policies are stored by package
// fsm and enforced by package rpc; docs/acl.md describes the rules.
package acl

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/token"
)

// Access is one rule's decision. The zero value is AccessUnset.
type Access uint8

// Access levels. Write implies read; Deny overrides both at the same
// specificity.
const (
	AccessUnset Access = iota
	AccessRead
	AccessWrite
	AccessDeny
)

// String implements fmt.Stringer with the rule language's words.
func (a Access) String() string {
	switch a {
	case AccessRead:
		return "read"
	case AccessWrite:
		return "write"
	case AccessDeny:
		return "deny"
	}
	return "unset"
}

// ParseAccess parses "read", "write" or "deny".
func ParseAccess(s string) (Access, error) {
	switch s {
	case "read":
		return AccessRead, nil
	case "write":
		return AccessWrite, nil
	case "deny":
		return AccessDeny, nil
	}
	return AccessUnset, fmt.Errorf("invalid policy %q: want \"read\", \"write\" or \"deny\"", s)
}

// ServiceRule is one service or service_prefix block.
type ServiceRule struct {
	// Name is the exact service name (service) or the prefix
	// (service_prefix; "" matches every service).
	Name   string
	Prefix bool
	Policy Access
}

// Policy is the parsed form of one rules document.
type Policy struct {
	// Services holds the service and service_prefix rules in document
	// order.
	Services []ServiceRule
	// Operator and ACL are the operator = "..." and acl = "..." rules
	// (AccessUnset when absent).
	Operator, ACL Access
}

// ErrInvalidRules is wrapped by every Parse error.
var ErrInvalidRules = errors.New("invalid ACL rules")

// MaxRulesSize bounds a rules document (bytes).
const MaxRulesSize = 64 << 10

// Parse parses a rules document in HCL or JSON (HCL's parser reads both):
//
//	service "web" { policy = "write" }
//	service_prefix "" { policy = "read" }
//	operator = "read"
//	acl = "write"
//
// Unknown rule kinds, unknown fields, duplicate rules and bad policy words
// are errors naming the problem. An empty document is an empty policy.
func Parse(rules string) (*Policy, error) {
	if len(rules) > MaxRulesSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrInvalidRules, len(rules), MaxRulesSize)
	}
	f, err := hcl.ParseString(rules)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRules, err)
	}
	list, ok := f.Node.(*ast.ObjectList)
	if !ok {
		return nil, fmt.Errorf("%w: the document is not a list of rules", ErrInvalidRules)
	}
	p := &Policy{}
	seen := map[string]bool{}
	for _, item := range list.Items {
		if err := p.addItem(item, seen); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidRules, err)
		}
	}
	return p, nil
}

// keyText returns the unquoted text of an object key.
func keyText(k *ast.ObjectKey) string {
	if k.Token.Type == token.STRING {
		if v, ok := k.Token.Value().(string); ok {
			return v
		}
	}
	return k.Token.Text
}

func (p *Policy) addItem(item *ast.ObjectItem, seen map[string]bool) error {
	if len(item.Keys) == 0 {
		return errors.New("a rule without a name")
	}
	kind := keyText(item.Keys[0])
	switch kind {
	case "operator", "acl":
		if len(item.Keys) != 1 {
			return fmt.Errorf("%s takes a value (%s = \"read\"), not a block", kind, kind)
		}
		if seen[kind] {
			return fmt.Errorf("%s is set twice", kind)
		}
		seen[kind] = true
		a, err := literalAccess(item.Val)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		if kind == "operator" {
			p.Operator = a
		} else {
			p.ACL = a
		}
		return nil
	case "service", "service_prefix":
		prefix := kind == "service_prefix"
		if len(item.Keys) == 2 {
			return p.addService(kind, keyText(item.Keys[1]), prefix, item.Val, seen)
		}
		// JSON's nested form: "service": {"web": {"policy": "read"}}.
		obj, ok := item.Val.(*ast.ObjectType)
		if len(item.Keys) != 1 || !ok {
			return fmt.Errorf("%s needs a name and a block: %s \"name\" { policy = \"read\" }", kind, kind)
		}
		for _, sub := range obj.List.Items {
			if len(sub.Keys) != 1 {
				return fmt.Errorf("%s needs a name and a block: %s \"name\" { policy = \"read\" }", kind, kind)
			}
			if err := p.addService(kind, keyText(sub.Keys[0]), prefix, sub.Val, seen); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown rule kind %q at %s (supported: service, service_prefix, operator, acl)", kind, item.Keys[0].Pos())
}

func (p *Policy) addService(kind, name string, prefix bool, val ast.Node, seen map[string]bool) error {
	id := kind + "\x00" + name
	if seen[id] {
		return fmt.Errorf("%s %q is set twice", kind, name)
	}
	seen[id] = true
	obj, ok := val.(*ast.ObjectType)
	if !ok {
		return fmt.Errorf("%s %q: want a block { policy = \"read\" }", kind, name)
	}
	var access Access
	for _, f := range obj.List.Items {
		if len(f.Keys) != 1 {
			return fmt.Errorf("%s %q: unexpected block", kind, name)
		}
		switch field := keyText(f.Keys[0]); field {
		case "policy":
			if access != AccessUnset {
				return fmt.Errorf("%s %q: policy is set twice", kind, name)
			}
			a, err := literalAccess(f.Val)
			if err != nil {
				return fmt.Errorf("%s %q: %w", kind, name, err)
			}
			access = a
		default:
			return fmt.Errorf("%s %q: unknown field %q (only policy is supported)", kind, name, field)
		}
	}
	if access == AccessUnset {
		return fmt.Errorf("%s %q: missing policy", kind, name)
	}
	p.Services = append(p.Services, ServiceRule{Name: name, Prefix: prefix, Policy: access})
	return nil
}

func literalAccess(n ast.Node) (Access, error) {
	lit, ok := n.(*ast.LiteralType)
	if !ok || lit.Token.Type != token.STRING {
		return AccessUnset, errors.New("want a string: \"read\", \"write\" or \"deny\"")
	}
	s, _ := lit.Token.Value().(string)
	return ParseAccess(s)
}

// String renders p in canonical HCL (rules sorted), so equal policies
// print alike.
func (p *Policy) String() string {
	var b strings.Builder
	rules := append([]ServiceRule(nil), p.Services...)
	sort.Slice(rules, func(i, j int) bool {
		if rules[i].Prefix != rules[j].Prefix {
			return !rules[i].Prefix
		}
		return rules[i].Name < rules[j].Name
	})
	for _, r := range rules {
		kind := "service"
		if r.Prefix {
			kind = "service_prefix"
		}
		fmt.Fprintf(&b, "%s %q { policy = %q }\n", kind, r.Name, r.Policy.String())
	}
	if p.Operator != AccessUnset {
		fmt.Fprintf(&b, "operator = %q\n", p.Operator.String())
	}
	if p.ACL != AccessUnset {
		fmt.Fprintf(&b, "acl = %q\n", p.ACL.String())
	}
	return b.String()
}
