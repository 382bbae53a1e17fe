package httpapi

import (
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// chainstore's catalog holds service instances, each with at most one TTL
// check, and no nodes. The Consul shapes below are filled from an
// instance as far as it goes (docs/http-api.md, Catalog): the node name
// and address are the instance's address, the weights are Consul's
// defaults, and an instance's TTL check is reported as the check
// "service:<ID>" of type "ttl".

// registration is the body of PUT /v1/catalog/register, in the fields
// chainstore uses; consul/api sends more (node metadata, tagged
// addresses, weights), which are accepted and ignored.
type registration struct {
	Node       string
	Address    string
	Datacenter string
	Service    *struct {
		ID      string
		Service string
		Tags    []string
		Meta    map[string]string
		Port    int
		Address string
	}
	Check  *registrationCheck
	Checks []registrationCheck
}

type registrationCheck struct {
	CheckID string
	Status  string
}

// catalogRegister is PUT /v1/catalog/register: registers the body's
// Service as an instance (ID: Service.ID, else Service.Service) without a
// check, so it is always passing; instances with TTL checks are
// registered through gRPC (storectl catalog register --ttl). Answers true.
func (s *Server) catalogRegister(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDC(r); err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var reg registration
	if err := json.Unmarshal(body, &reg); err != nil {
		return badRequest("Request decoding failed: %v", err)
	}
	if reg.Service == nil {
		return badRequest("chainstore's catalog holds service instances only: the registration must have a Service (node-only registrations are not supported)")
	}
	checks := reg.Checks
	if reg.Check != nil {
		checks = append(checks, *reg.Check)
	}
	for _, c := range checks {
		if c.Status != "" && c.Status != "passing" {
			return badRequest("check %q has status %q: an instance registered over HTTP has no check and is always passing; instances with TTL checks are registered through the gRPC API (storectl catalog register --ttl)", c.CheckID, c.Status)
		}
	}
	in := &chainstorev1.Instance{
		Id: reg.Service.ID, Service: reg.Service.Service, Address: reg.Service.Address,
		Port: uint32(max(reg.Service.Port, 0)), Tags: reg.Service.Tags, Meta: reg.Service.Meta,
		Datacenter: reg.Datacenter,
	}
	if reg.Service.Port > 65535 {
		return badRequest("Service.Port %d is out of range", reg.Service.Port)
	}
	if in.Id == "" {
		in.Id = in.Service
	}
	if in.Address == "" {
		in.Address = reg.Address
	}
	if _, err := s.backend.Register(requestContext(r), &chainstorev1.RegisterRequest{Instance: in}); err != nil {
		return err
	}
	return writeJSON(w, true)
}

// catalogDeregister is PUT /v1/catalog/deregister: removes the instance
// named by ServiceID. Answers true (also when it did not exist, as
// Consul).
func (s *Server) catalogDeregister(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDC(r); err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var dereg struct {
		Node      string
		ServiceID string
		CheckID   string
	}
	if err := json.Unmarshal(body, &dereg); err != nil {
		return badRequest("Request decoding failed: %v", err)
	}
	if dereg.ServiceID == "" {
		return badRequest("ServiceID must be set: chainstore's catalog holds service instances only (no nodes, and checks go with their instance)")
	}
	if _, err := s.backend.Deregister(requestContext(r), &chainstorev1.DeregisterRequest{Id: dereg.ServiceID}); err != nil {
		return err
	}
	return writeJSON(w, true)
}

// catalogServices is GET /v1/catalog/services: {"<service>": [tags]}.
// chainstore's service summaries carry no tags: every list is empty.
func (s *Server) catalogServices(w http.ResponseWriter, r *http.Request) error {
	if err := refuseUnsupported(r, "filter", "node-meta"); err != nil {
		return err
	}
	opts, err := s.queryOptions(r)
	if err != nil {
		return err
	}
	resp, err := s.backend.Services(requestContext(r), &chainstorev1.ServicesRequest{Options: opts})
	if err != nil {
		return err
	}
	setMeta(w, resp.GetMeta())
	out := make(map[string][]string, len(resp.GetServices()))
	for _, sv := range resp.GetServices() {
		out[sv.GetName()] = []string{}
	}
	return writeJSON(w, out)
}

// catalogService is one element of GET /v1/catalog/service/:name.
type catalogService struct {
	ID                       string
	Node                     string
	Address                  string
	Datacenter               string
	TaggedAddresses          map[string]string
	NodeMeta                 map[string]string
	ServiceKind              string
	ServiceID                string
	ServiceName              string
	ServiceTags              []string
	ServiceAddress           string
	ServiceWeights           weights
	ServiceMeta              map[string]string
	ServicePort              int
	ServiceEnableTagOverride bool
	CreateIndex              uint64
	ModifyIndex              uint64
}

type weights struct{ Passing, Warning int }

// catalogService is GET /v1/catalog/service/:name (?tag= filters by tag).
func (s *Server) catalogService(w http.ResponseWriter, r *http.Request) error {
	insts, err := s.instances(w, r, false)
	if err != nil {
		return err
	}
	out := make([]catalogService, 0, len(insts))
	for _, ih := range insts {
		in := ih.GetInstance()
		out = append(out, catalogService{
			Node: nodeName(in), Address: hostOf(in.GetAddress()), Datacenter: in.GetDatacenter(),
			TaggedAddresses: map[string]string{}, NodeMeta: map[string]string{},
			ServiceID: in.GetId(), ServiceName: in.GetService(), ServiceTags: nonNil(in.GetTags()),
			ServiceAddress: in.GetAddress(), ServiceWeights: weights{Passing: 1, Warning: 1},
			ServiceMeta: nonNilMap(in.GetMeta()), ServicePort: int(in.GetPort()),
			CreateIndex: ih.GetCreateIndex(), ModifyIndex: ih.GetModifyIndex(),
		})
	}
	return writeJSON(w, out)
}

// serviceEntry is one element of GET /v1/health/service/:name.
type serviceEntry struct {
	Node struct {
		ID              string
		Node            string
		Address         string
		Datacenter      string
		TaggedAddresses map[string]string
		Meta            map[string]string
	}
	Service struct {
		ID                string
		Service           string
		Tags              []string
		Meta              map[string]string
		Port              int
		Address           string
		Weights           weights
		EnableTagOverride bool
		Datacenter        string
		CreateIndex       uint64
		ModifyIndex       uint64
	}
	Checks []healthCheck
}

type healthCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
	Definition  struct {
		TTL string `json:",omitempty"`
	}
	CreateIndex uint64
	ModifyIndex uint64
}

// healthService is GET /v1/health/service/:name (?passing, ?tag=).
func (s *Server) healthService(w http.ResponseWriter, r *http.Request) error {
	passing := false
	if v, ok := r.URL.Query()["passing"]; ok {
		passing = true
		if s := strings.Join(v, ""); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return badRequest("Invalid value for ?passing: %q", s)
			}
			passing = b
		}
	}
	insts, err := s.instances(w, r, passing)
	if err != nil {
		return err
	}
	out := make([]serviceEntry, 0, len(insts))
	for _, ih := range insts {
		in := ih.GetInstance()
		var e serviceEntry
		e.Node.Node, e.Node.Address, e.Node.Datacenter = nodeName(in), hostOf(in.GetAddress()), in.GetDatacenter()
		e.Node.TaggedAddresses, e.Node.Meta = map[string]string{}, map[string]string{}
		e.Service.ID, e.Service.Service, e.Service.Tags = in.GetId(), in.GetService(), nonNil(in.GetTags())
		e.Service.Meta, e.Service.Port, e.Service.Address = nonNilMap(in.GetMeta()), int(in.GetPort()), in.GetAddress()
		e.Service.Weights, e.Service.Datacenter = weights{Passing: 1, Warning: 1}, in.GetDatacenter()
		e.Service.CreateIndex, e.Service.ModifyIndex = ih.GetCreateIndex(), ih.GetModifyIndex()
		e.Checks = []healthCheck{}
		if in.GetTtl() != nil {
			c := healthCheck{
				Node: e.Node.Node, CheckID: "service:" + in.GetId(), Name: "Service '" + in.GetService() + "' check",
				Status: healthName(ih.GetStatus()), Output: ih.GetOutput(), ServiceID: in.GetId(),
				ServiceName: in.GetService(), ServiceTags: e.Service.Tags, Type: "ttl",
				CreateIndex: ih.GetCreateIndex(), ModifyIndex: ih.GetModifyIndex(),
			}
			c.Definition.TTL = durationString(in.GetTtl())
			e.Checks = append(e.Checks, c)
		}
		out = append(out, e)
	}
	return writeJSON(w, out)
}

// instances reads the instances of the path's service (passing only if
// asked), filtered by ?tag=, and writes the query headers.
func (s *Server) instances(w http.ResponseWriter, r *http.Request, passing bool) ([]*chainstorev1.InstanceHealth, error) {
	if err := refuseUnsupported(r, "filter", "near", "node-meta"); err != nil {
		return nil, err
	}
	service := r.PathValue("service")
	if service == "" {
		return nil, badRequest("Missing service name")
	}
	opts, err := s.queryOptions(r)
	if err != nil {
		return nil, err
	}
	resp, err := s.backend.Instances(requestContext(r), &chainstorev1.InstancesRequest{Service: service, PassingOnly: passing, Options: opts})
	if err != nil {
		return nil, err
	}
	setMeta(w, resp.GetMeta())
	tags := r.URL.Query()["tag"]
	out := make([]*chainstorev1.InstanceHealth, 0, len(resp.GetInstances()))
	for _, ih := range resp.GetInstances() {
		if hasTags(ih.GetInstance().GetTags(), tags) {
			out = append(out, ih)
		}
	}
	return out, nil
}

// refuseUnsupported answers 400 for query parameters that would change a
// result and that chainstore does not implement, rather than ignoring
// them.
func refuseUnsupported(r *http.Request, params ...string) error {
	q := r.URL.Query()
	for _, p := range params {
		if _, ok := q[p]; ok {
			return badRequest("?%s is not supported by chainstore (docs/http-api.md)", p)
		}
	}
	return nil
}

func hasTags(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// nodeName stands in for Consul's node: chainstore has none, so an
// instance's node is named after its address.
func nodeName(in *chainstorev1.Instance) string { return hostOf(in.GetAddress()) }

// hostOf strips a port from an address, if it has one.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func healthName(h chainstorev1.HealthStatus) string {
	switch h {
	case chainstorev1.HealthStatus_HEALTH_STATUS_PASSING:
		return "passing"
	case chainstorev1.HealthStatus_HEALTH_STATUS_WARNING:
		return "warning"
	case chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL:
		return "critical"
	}
	return "critical"
}

func durationString(d *durationpb.Duration) string {
	if d == nil {
		return ""
	}
	return d.AsDuration().String()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
