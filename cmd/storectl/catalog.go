package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/cmd/internal/cli"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// catalogCommands is the catalog group: one storectl command whose own
// subcommands (catalogSubcommands) register service instances, update
// their TTL checks and list them.
func catalogCommands() commandTable {
	return commandTable{{
		Name:    "catalog",
		Summary: "register service instances and report their health: catalog register|check|deregister|instances|services",
		Run:     runCatalog,
	}}
}

// Usage lines of the catalog subcommands, printed after a usage error.
const (
	registerUsage   = "usage: storectl catalog register --service NAME --id ID --address HOST --port P [--meta k=v]... [--tag T]... [--ttl D]"
	checkUsage      = "usage: storectl catalog check ID pass|warn|fail [--note TEXT]"
	deregisterUsage = "usage: storectl catalog deregister ID"
	instancesUsage  = "usage: storectl catalog instances NAME [--json] [--passing] [--stale|--consistent] [--index N [--wait D]]"
	servicesUsage   = "usage: storectl catalog services [--json] [--stale|--consistent] [--index N [--wait D]]"
)

// catalogSubcommands are the subcommands of `storectl catalog`.
func catalogSubcommands() commandTable {
	return commandTable{
		{Name: "register", Summary: "register (or replace) an instance: " + strings.TrimPrefix(registerUsage, "usage: storectl catalog "), Run: runCatalogRegister},
		{Name: "check", Summary: "set the status of an instance's TTL check: " + strings.TrimPrefix(checkUsage, "usage: storectl catalog "), Run: runCatalogCheck},
		{Name: "deregister", Summary: "remove an instance: deregister ID", Run: runCatalogDeregister},
		{Name: "instances", Summary: "list a service's instances with their health: instances NAME [--json] [--passing]", Run: runCatalogInstances},
		{Name: "services", Summary: "list the registered services with their instance counts: services [--json]", Run: runCatalogServices},
	}
}

func catalogUsage(w io.Writer) {
	catalogSubcommands().PrintUsage(w, "usage: storectl [--addr host:port[,host:port...]] catalog SUBCOMMAND [ARGS]\n\nsubcommands:", 10)
}

// runCatalog dispatches to a catalog subcommand, as run does to a command:
// the global flags (before "catalog" or before the subcommand) are passed
// on in front of the subcommand's own arguments.
func runCatalog(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	global, rest := splitGlobalFlags(args)
	if len(rest) == 0 && slices.ContainsFunc(global, isHelpFlag) {
		rest = []string{"--help"} // `storectl catalog --help`
	}
	c, err := catalogSubcommands().Select(rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		catalogUsage(stderr)
		return 0
	case errors.Is(err, cli.ErrNoCommand):
		catalogUsage(stderr)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "storectl catalog: %v\n", err)
		catalogUsage(stderr)
		return 2
	}
	return c.Run(ctx, append(global, rest[1:]...), stdout, stderr)
}

// isHelpFlag reports whether a is a flag asking for help.
func isHelpFlag(a string) bool {
	switch a {
	case "-h", "--h", "-help", "--help":
		return true
	}
	return false
}

// nArgs is "1 argument" or "N arguments".
func nArgs(n int) string {
	if n == 1 {
		return "1 argument"
	}
	return fmt.Sprintf("%d arguments", n)
}

// usageError prints a usage error of a catalog subcommand ("storectl
// catalog NAME: MSG" and the usage line) and returns exit code 2.
func usageError(stderr io.Writer, name, usageLine string, format string, args ...any) int {
	fmt.Fprintf(stderr, "storectl catalog %s: %s\n%s\n", name, fmt.Sprintf(format, args...), usageLine)
	return 2
}

// parseCatalogFlags parses a catalog subcommand's arguments and returns
// the positional ones; ok false means the process must exit with code
// (0 after -h, 2 after a bad flag, whose error the flag set printed).
func parseCatalogFlags(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	pos, err := cli.ParseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil, 0, false
	case err != nil:
		return nil, 2, false
	}
	return pos, 0, true
}

// stringsFlag is a repeatable string flag: every use adds one value.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// registerArgs is the command line of `catalog register`.
type registerArgs struct {
	service, id, address, port string
	meta, tags                 stringsFlag
	ttl                        time.Duration
}

// requiredRegisterFlags are the flags `catalog register` cannot do without.
var requiredRegisterFlags = []string{"service", "id", "address", "port"}

// instance builds the instance to register. Its errors are about the
// command line (a port that is not a number, a meta pair without '=')
// and name the flag; the instance's content is checked by Validate.
func (ra *registerArgs) instance() (*catalog.Instance, error) {
	port, err := strconv.Atoi(ra.port)
	if err != nil {
		return nil, fmt.Errorf("--port %q: not a number (want a port, 1-65535)", ra.port)
	}
	in := &catalog.Instance{ID: ra.id, Service: ra.service, Address: ra.address, Port: port, Tags: ra.tags, TTL: ra.ttl}
	for _, kv := range ra.meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--meta %q: want KEY=VALUE", kv)
		}
		if _, dup := in.Meta[k]; dup {
			return nil, fmt.Errorf("--meta %q: key %q given twice", kv, k)
		}
		if in.Meta == nil {
			in.Meta = map[string]string{}
		}
		in.Meta[k] = v
	}
	return in, nil
}

// instanceProto converts an instance for the API.
func instanceProto(in *catalog.Instance) *chainstorev1.Instance {
	p := &chainstorev1.Instance{
		Id: in.ID, Service: in.Service, Address: in.Address, Port: uint32(in.Port), // Validate bounds the port to 1-65535
		Meta: in.Meta, Tags: in.Tags, Datacenter: in.Datacenter,
	}
	if in.TTL != 0 {
		p.Ttl = durationpb.New(in.TTL)
	}
	return p
}

func runCatalogRegister(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("catalog register", stderr)
	ra := &registerArgs{}
	fs.StringVar(&ra.service, "service", "", "name of the service the instance belongs to (required)")
	fs.StringVar(&ra.id, "id", "", "instance ID, unique in the cluster; registering an ID again replaces the instance (required)")
	fs.StringVar(&ra.address, "address", "", "host name or IP address of the instance (required)")
	fs.StringVar(&ra.port, "port", "", "the instance's `PORT`, 1-65535 (required)")
	fs.Var(&ra.meta, "meta", "a metadata pair `KEY=VALUE` (repeatable)")
	fs.Var(&ra.tags, "tag", "a `TAG` (repeatable)")
	fs.DurationVar(&ra.ttl, "ttl", 0, "TTL of the instance's health check, e.g. 30s: the check starts critical and must be set with \"storectl catalog check ID pass\" within every TTL (0: no check, always passing)")
	pos, code, ok := parseCatalogFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "register", registerUsage, "unexpected arguments: %s", strings.Join(pos, " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var missing []string
	for _, name := range requiredRegisterFlags {
		if !set[name] {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		return usageError(stderr, "register", registerUsage, "missing %s", strings.Join(missing, ", "))
	}
	in, err := ra.instance()
	if err != nil {
		return usageError(stderr, "register", registerUsage, "%v", err)
	}
	report := catalogReport{errPrefix: fmt.Sprintf("Error registering instance %q", in.ID), invalidPrefix: "Error registering instance"}
	// The checks the server makes, with its exact message, except the
	// datacenter's (this one is the server's, which storectl does not know).
	if err := in.Validate(in.Datacenter); err != nil {
		return report.invalid(stderr, err)
	}
	return cf.catalogWrite(ctx, stdout, stderr, report, func(ctx context.Context, c *api.Client, _ int) (string, error) {
		_, err := c.Register(ctx, &chainstorev1.RegisterRequest{Instance: instanceProto(in)})
		return fmt.Sprintf("Instance %q of service %q registered", in.ID, in.Service), err
	})
}

// catalogReport is what a catalog write prints on failure: errPrefix
// starts the message of an error, invalidPrefix that of an invalid request
// (reason INVALID_INSTANCE, found by the server or by storectl's own
// check), whose text names the instance already ("instance \"web-1\":
// Port: ...").
type catalogReport struct {
	errPrefix, invalidPrefix string
}

// invalid prints the error of a request that storectl found invalid
// before sending it, as the server would have, and returns exit code 1.
func (r catalogReport) invalid(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", r.invalidPrefix, err)
	return 1
}

// catalogWrite is the frame of the catalog writes (register, check,
// deregister): dial, run call, retried through a leader failover like a
// plain put (every catalog write is idempotent, see retryIdempotent),
// then print the message call returns. call gets the attempt number (1
// for the first). A failure gives exit code 1.
func (cf *clientFlags) catalogWrite(ctx context.Context, stdout, stderr io.Writer, r catalogReport,
	call func(ctx context.Context, c *api.Client, attempt int) (string, error),
) int {
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", r.errPrefix, err)
		return 1
	}
	defer func() { _ = c.Close() }()
	var done string
	attempt := 0
	err = retryIdempotent(ctx, true, stderr, func(ctx context.Context) error {
		attempt++
		var err error
		done, err = call(ctx, c, attempt)
		return err
	})
	switch {
	case api.ErrorReason(err) == api.ReasonInvalidInstance:
		fmt.Fprintf(stderr, "%s: %s\n", r.invalidPrefix, api.ErrorText(err))
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "%s: %s\n", r.errPrefix, api.ErrorText(err))
		return 1
	}
	fmt.Fprintln(stdout, done)
	return 0
}

// checkID makes the server's check of an instance ID given on the command
// line (check, deregister), with its message.
func checkID(id string) error {
	if id == "" {
		return &catalog.ValidationError{Field: "ID", Msg: "must be set"}
	}
	return nil
}

// healthProto and healthFromProto convert between catalog.Health and the
// API's enum.
func healthProto(h catalog.Health) chainstorev1.HealthStatus {
	switch h {
	case catalog.Passing:
		return chainstorev1.HealthStatus_HEALTH_STATUS_PASSING
	case catalog.Warning:
		return chainstorev1.HealthStatus_HEALTH_STATUS_WARNING
	case catalog.Critical:
		return chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL
	}
	return chainstorev1.HealthStatus_HEALTH_STATUS_UNSPECIFIED
}

// healthName is the name of a status as storectl prints it (Consul's:
// passing, warning, critical).
func healthName(s chainstorev1.HealthStatus) string {
	switch s {
	case chainstorev1.HealthStatus_HEALTH_STATUS_PASSING:
		return catalog.Passing.String()
	case chainstorev1.HealthStatus_HEALTH_STATUS_WARNING:
		return catalog.Warning.String()
	case chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL:
		return catalog.Critical.String()
	}
	return "unknown"
}

func runCatalogCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("catalog check", stderr)
	note := fs.String("note", "", "text to show as the check's output")
	pos, code, ok := parseCatalogFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		return usageError(stderr, "check", checkUsage, "want an instance ID and a status, got %s", nArgs(len(pos)))
	}
	id := pos[0]
	h, err := catalog.ParseHealth(pos[1])
	if err != nil {
		return usageError(stderr, "check", checkUsage, "%v", err)
	}
	report := catalogReport{errPrefix: fmt.Sprintf("Error updating the check of instance %q", id), invalidPrefix: "Error updating the check"}
	// The server's checks, with its messages.
	if err := checkID(id); err != nil {
		return report.invalid(stderr, err)
	}
	if len(*note) > catalog.MaxOutputLen {
		return report.invalid(stderr, &catalog.ValidationError{ID: id, Field: "Note", Msg: fmt.Sprintf("longer than %d bytes", catalog.MaxOutputLen)})
	}
	return cf.catalogWrite(ctx, stdout, stderr, report,
		func(ctx context.Context, c *api.Client, _ int) (string, error) {
			_, err := c.UpdateCheck(ctx, &chainstorev1.UpdateCheckRequest{Id: id, Status: healthProto(h), Note: *note})
			return fmt.Sprintf("Check of instance %q set to %s", id, h), err
		})
}

func runCatalogDeregister(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("catalog deregister", stderr)
	pos, code, ok := parseCatalogFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, "deregister", deregisterUsage, "want one instance ID, got %s", nArgs(len(pos)))
	}
	id := pos[0]
	report := catalogReport{errPrefix: fmt.Sprintf("Error deregistering instance %q", id), invalidPrefix: "Error deregistering instance"}
	if err := checkID(id); err != nil {
		return report.invalid(stderr, err)
	}
	return cf.catalogWrite(ctx, stdout, stderr, report,
		func(ctx context.Context, c *api.Client, attempt int) (string, error) {
			resp, err := c.Deregister(ctx, &chainstorev1.DeregisterRequest{Id: id})
			// After a retry the instance may be gone because the first
			// attempt removed it: only the first answer tells.
			if err == nil && !resp.GetExisted() && attempt == 1 {
				return fmt.Sprintf("Instance %q was not registered", id), nil
			}
			return fmt.Sprintf("Instance %q deregistered", id), err
		})
}

// catalogQuery is the frame of instances and services: the connection
// and read flags (--json, --stale, --consistent, --index, --wait), want
// positional arguments, then one call through clientFlags.query.
type catalogQuery struct {
	name, usage string
	nargs       int
	// argsErr says what the positional arguments must be.
	argsErr   string
	errPrefix func(pos []string) string
	// addFlags registers the command's own flags; fetch gets their values
	// back through the closure.
	addFlags func(fs *flag.FlagSet)
	fetch    func(ctx context.Context, c *api.Client, q queryArgs) (output, error)
}

func (cq catalogQuery) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("catalog "+cq.name, stderr)
	rf := addReadFlags(fs, true)
	if cq.addFlags != nil {
		cq.addFlags(fs)
	}
	pos, code, ok := parseCatalogFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != cq.nargs {
		return usageError(stderr, cq.name, cq.usage, "%s, got %s", cq.argsErr, nArgs(len(pos)))
	}
	opts, err := rf.options()
	if err != nil {
		return usageError(stderr, cq.name, cq.usage, "%v", err)
	}
	q := queryArgs{pos: pos, opts: opts, json: rf.json}
	return cf.query(ctx, stdout, stderr, cq.errPrefix(pos), func(ctx context.Context, c *api.Client) (output, error) {
		return cq.fetch(ctx, c, q)
	})
}

func runCatalogInstances(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var passing bool
	return catalogQuery{
		name: "instances", usage: instancesUsage, nargs: 1, argsErr: "want one service name",
		errPrefix: func(pos []string) string { return fmt.Sprintf("Error listing the instances of service %q", pos[0]) },
		addFlags: func(fs *flag.FlagSet) {
			fs.BoolVar(&passing, "passing", false, "only the instances whose check is passing")
		},
		fetch: func(ctx context.Context, c *api.Client, q queryArgs) (output, error) {
			return fetchInstances(ctx, c, q, passing)
		},
	}.run(ctx, args, stdout, stderr)
}

func runCatalogServices(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return catalogQuery{
		name: "services", usage: servicesUsage, nargs: 0, argsErr: "want no arguments",
		errPrefix: func([]string) string { return "Error listing services" },
		fetch:     fetchServices,
	}.run(ctx, args, stdout, stderr)
}

// instanceJSON is one instance of `catalog instances --json`. The
// registration fields have the names of storeagent's --services file.
type instanceJSON struct {
	ID          string            `json:"id"`
	Service     string            `json:"service"`
	Address     string            `json:"address"`
	Port        uint32            `json:"port"`
	Meta        map[string]string `json:"meta"`
	Tags        []string          `json:"tags"`
	Datacenter  string            `json:"datacenter"`
	TTL         string            `json:"ttl,omitempty"`
	Status      string            `json:"status"`
	Output      string            `json:"output"`
	CreateIndex uint64            `json:"create_index"`
	ModifyIndex uint64            `json:"modify_index"`
}

func newInstanceJSON(ih *chainstorev1.InstanceHealth) instanceJSON {
	in := ih.GetInstance()
	j := instanceJSON{
		ID: in.GetId(), Service: in.GetService(), Address: in.GetAddress(), Port: in.GetPort(),
		Meta: in.GetMeta(), Tags: in.GetTags(), Datacenter: in.GetDatacenter(),
		Status: healthName(ih.GetStatus()), Output: ih.GetOutput(),
		CreateIndex: ih.GetCreateIndex(), ModifyIndex: ih.GetModifyIndex(),
	}
	if j.Meta == nil {
		j.Meta = map[string]string{}
	}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if in.GetTtl() != nil {
		j.TTL = in.GetTtl().AsDuration().String()
	}
	return j
}

// fetchInstances lists a service's instances: a table (ID, Address:Port,
// Health, Output, Tags, Meta), or with --json an array of instanceJSON.
func fetchInstances(ctx context.Context, c *api.Client, q queryArgs, passing bool) (output, error) {
	service := q.pos[0]
	resp, err := c.Instances(ctx, &chainstorev1.InstancesRequest{Service: service, PassingOnly: passing, Options: q.opts})
	if err != nil {
		return output{}, err
	}
	if q.json {
		out := make([]instanceJSON, 0, len(resp.GetInstances()))
		for _, ih := range resp.GetInstances() {
			out = append(out, newInstanceJSON(ih))
		}
		return output{json: out}, nil
	}
	if len(resp.GetInstances()) == 0 {
		what := "instances"
		if passing {
			what = "passing instances"
		}
		return output{note: fmt.Sprintf("No %s of service %q", what, service)}, nil
	}
	rows := [][]string{{"ID", "Address:Port", "Health", "Output", "Tags", "Meta"}}
	for _, ih := range resp.GetInstances() {
		in := ih.GetInstance()
		rows = append(rows, []string{
			in.GetId(),
			net.JoinHostPort(in.GetAddress(), strconv.FormatUint(uint64(in.GetPort()), 10)),
			healthName(ih.GetStatus()),
			cell(ih.GetOutput()),
			cell(strings.Join(in.GetTags(), ",")),
			cell(metaCell(in.GetMeta())),
		})
	}
	return tableOutput(2, rows), nil
}

// metaCell renders metadata as k=v pairs sorted by key, comma-separated.
func metaCell(meta map[string]string) string {
	pairs := make([]string, 0, len(meta))
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		pairs = append(pairs, k+"="+meta[k])
	}
	return strings.Join(pairs, ",")
}

// cell makes s fit one table cell: control characters (a check note may
// hold newlines or tabs) become spaces, and an empty value shows as "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// serviceJSON is one service of `catalog services --json`.
type serviceJSON struct {
	Name      string `json:"name"`
	Instances uint32 `json:"instances"`
	Passing   uint32 `json:"passing"`
}

// fetchServices lists the services: a table (Service, Instances,
// Passing), or with --json an array of serviceJSON.
func fetchServices(ctx context.Context, c *api.Client, q queryArgs) (output, error) {
	resp, err := c.Services(ctx, &chainstorev1.ServicesRequest{Options: q.opts})
	if err != nil {
		return output{}, err
	}
	if q.json {
		out := make([]serviceJSON, 0, len(resp.GetServices()))
		for _, s := range resp.GetServices() {
			out = append(out, serviceJSON{s.GetName(), s.GetInstances(), s.GetPassing()})
		}
		return output{json: out}, nil
	}
	if len(resp.GetServices()) == 0 {
		return output{note: "No services registered"}, nil
	}
	rows := [][]string{{"Service", "Instances", "Passing"}}
	for _, s := range resp.GetServices() {
		rows = append(rows, []string{s.GetName(), strconv.FormatUint(uint64(s.GetInstances()), 10), strconv.FormatUint(uint64(s.GetPassing()), 10)})
	}
	return tableOutput(2, rows), nil
}
