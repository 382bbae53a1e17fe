package chain

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-bexpr"
)

// Health-check statuses, as in Consul's catalog.
const (
	HealthPassing  = "passing"
	HealthWarning  = "warning"
	HealthCritical = "critical"
)

// ServiceInstance is one catalog health row (node, service, checks) as
// seen by a subset Filter. Selectors address it the way Consul's
// health-endpoint filters do: `Service.Meta.version == v1`,
// `Node.Datacenter == dc2`, `canary in Service.Tags`,
// `any Checks as c { c.Status == passing }`. The flat forms `ServiceMeta.<k>`,
// `ServiceTags`, `ServiceID`, `ServiceName`, `ServiceAddress`,
// `ServicePort`, `NodeMeta.<k>` and `Datacenter` are also accepted; they are
// mirrors computed by Match, not fields to fill in.
type ServiceInstance struct {
	Node    InstanceNode
	Service InstanceService
	Checks  []InstanceCheck
}

// InstanceNode is the node part of a ServiceInstance.
type InstanceNode struct {
	ID         string
	Node       string
	Address    string
	Datacenter string
	Meta       map[string]string
}

// InstanceService is the service part of a ServiceInstance.
type InstanceService struct {
	ID      string
	Service string
	Tags    []string
	Address string
	Port    int
	Meta    map[string]string
}

// InstanceCheck is one health check of a ServiceInstance.
type InstanceCheck struct {
	CheckID   string
	Name      string
	Status    string
	ServiceID string
}

// Healthy reports whether the instance counts as healthy for a subset
// (OnlyPassing, docs/discovery-chain.md, service-resolver): with
// onlyPassing every check must be passing; otherwise only a critical check
// makes it unhealthy.
func (inst *ServiceInstance) Healthy(onlyPassing bool) bool {
	if inst == nil {
		return false
	}
	for _, c := range inst.Checks {
		if c.Status == HealthCritical || (onlyPassing && c.Status != HealthPassing) {
			return false
		}
	}
	return true
}

// filterView is what a Filter actually evaluates: the instance plus the
// flat mirror fields of the older "ServiceMeta.env" filter form.
type filterView struct {
	Node    InstanceNode
	Service InstanceService
	Checks  []InstanceCheck

	ServiceMeta    map[string]string
	ServiceTags    []string
	ServiceID      string
	ServiceName    string
	ServiceAddress string
	ServicePort    int
	NodeMeta       map[string]string
	Datacenter     string
}

// MaxFilterExpressions caps the work go-bexpr's parser may do on one
// filter. Its PEG grammar backtracks exponentially on nested parentheses
// (8 levels already cost about 8 million steps), so an uncapped or
// default-capped (2 million) parse of a hostile filter takes most of a
// second, on the write path. 500 000 steps is about 40 ms and still
// parses flat filters of several kilobytes and 6 levels of parentheses.
const MaxFilterExpressions = 500_000

// Filter is a parsed subset filter (a go-bexpr expression). The zero
// expression "" matches every instance. A Filter is immutable and safe for
// concurrent use.
type Filter struct {
	expr string
	eval *bexpr.Evaluator // nil for the empty expression
}

// ErrNilInstance is returned by Filter.Match for a nil instance.
var ErrNilInstance = errors.New("service instance is nil")

// ParseFilter parses a bexpr subset filter. An empty expression yields a
// Filter that matches everything. Parse errors are returned as they come
// from go-bexpr (validation wraps them in the message
// `Filter for subset "<s>" is not a valid expression: <err>`).
func ParseFilter(expr string) (*Filter, error) {
	if expr == "" {
		return &Filter{}, nil
	}
	ev, err := bexpr.CreateEvaluator(expr, bexpr.WithMaxExpressions(MaxFilterExpressions))
	if err != nil {
		return nil, err
	}
	return &Filter{expr: expr, eval: ev}, nil
}

// String returns the expression the filter was parsed from.
func (f *Filter) String() string {
	if f == nil {
		return ""
	}
	return f.expr
}

// Match reports whether inst satisfies the filter. A selector naming a
// field that does not exist (e.g. `Service.Mta.x`) is an error; a missing
// key inside a map (e.g. `Service.Meta.version` on an instance without that
// meta key) simply does not match.
func (f *Filter) Match(inst *ServiceInstance) (bool, error) {
	if inst == nil {
		return false, ErrNilInstance
	}
	if f == nil || f.eval == nil {
		return true, nil
	}
	view := &filterView{
		Node:           inst.Node,
		Service:        inst.Service,
		Checks:         inst.Checks,
		ServiceMeta:    inst.Service.Meta,
		ServiceTags:    inst.Service.Tags,
		ServiceID:      inst.Service.ID,
		ServiceName:    inst.Service.Service,
		ServiceAddress: inst.Service.Address,
		ServicePort:    inst.Service.Port,
		NodeMeta:       inst.Node.Meta,
		Datacenter:     inst.Node.Datacenter,
	}
	ok, err := f.eval.Evaluate(view)
	if err != nil {
		return false, fmt.Errorf("evaluate filter %q: %w", f.expr, err)
	}
	return ok, nil
}
