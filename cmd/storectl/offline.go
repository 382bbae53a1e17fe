package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/cmd/internal/cli"
)

// offlineTrustDomain is the trust domain `storectl compile` puts in SNIs
// unless --trust-domain is given: the same fixed value servers use for
// write-time validation, so offline output never depends on a cluster.
const offlineTrustDomain = chain.ValidationTrustDomain

// offlineCommands are the commands that work on entry files without a
// server.
func offlineCommands() commandTable {
	return commandTable{
		{
			Name:    "compile",
			Summary: "compile a discovery chain from entry files: compile --entries DIR [--datacenter DC] SERVICE",
			Run:     runCompile,
		},
		{
			Name:    "validate",
			Summary: "check entry files without a server: validate FILE...",
			Run:     runValidate,
		},
	}
}

const compileUsage = "usage: storectl compile --entries DIR [--datacenter DC] [--use-in-datacenter DC] [--trust-domain TD] " +
	"[--override-protocol P] [--override-connect-timeout D] [--override-mesh-gateway MODE] SERVICE"

// compileFlags are the options of `storectl compile`.
type compileFlags struct {
	dir             string
	datacenter      string
	useInDatacenter string
	trustDomain     string
	protocol        string
	connectTimeout  time.Duration
	meshGateway     string
}

// register adds the compile flags to fset.
func (cf *compileFlags) register(fset *flag.FlagSet) {
	fset.StringVar(&cf.dir, "entries", "", "directory of entry files (*.hcl, *.json), one entry per file (required)")
	fset.StringVar(&cf.datacenter, "datacenter", chain.DefaultDatacenter, "datacenter to compile the chain for")
	fset.StringVar(&cf.useInDatacenter, "use-in-datacenter", "", "datacenter the chain is used from, for the mesh-gateway rule (default: --datacenter)")
	fset.StringVar(&cf.trustDomain, "trust-domain", offlineTrustDomain, "trust domain used in target SNIs")
	fset.StringVar(&cf.protocol, "override-protocol", "", "protocol override, as an upstream's protocol setting")
	fset.DurationVar(&cf.connectTimeout, "override-connect-timeout", 0, "connect timeout override, e.g. 7s")
	fset.StringVar(&cf.meshGateway, "override-mesh-gateway", "", "mesh-gateway mode override: none, local or remote")
	fset.String("addr", "", "ignored: compile works offline")
}

func runCompile(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("compile", flag.ContinueOnError)
	fset.SetOutput(stderr)
	var cf compileFlags
	cf.register(fset)
	pos, err := cli.ParseInterspersed(fset, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cf.dir == "" || len(pos) != 1 || pos[0] == "" {
		fmt.Fprintln(stderr, compileUsage)
		return 2
	}
	if err := cf.check(); err != nil {
		fmt.Fprintf(stderr, "storectl compile: %v\n", err)
		return 2
	}
	service := pos[0]

	set, problems := loadEntryDir(cf.dir)
	if len(problems) == 0 {
		problems = set.checkGraph()
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		return 1
	}
	return cf.compile(set, service, stdout, stderr)
}

// compile prints {"Chain": ...} for service's chain compiled from set.
func (cf *compileFlags) compile(set *entryDir, service string, stdout, stderr io.Writer) int {
	useIn := cf.useInDatacenter
	if useIn == "" {
		useIn = cf.datacenter
	}
	res, err := chain.Compile(chain.CompileRequest{
		ServiceName:            service,
		EvaluateInNamespace:    chain.DefaultNamespace,
		EvaluateInDatacenter:   cf.datacenter,
		EvaluateInTrustDomain:  cf.trustDomain,
		UseInDatacenter:        useIn,
		OverrideProtocol:       cf.protocol,
		OverrideConnectTimeout: cf.connectTimeout,
		OverrideMeshGateway:    chain.MeshGatewayConfig{Mode: cf.meshGateway},
		Entries:                set.store,
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", set.fileOfChain(service), err)
		return 1
	}
	out, err := json.MarshalIndent(struct{ Chain *chain.CompiledChain }{res.Chain}, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "storectl compile: encode chain: %v\n", err)
		return 1
	}
	if _, err := stdout.Write(append(out, '\n')); err != nil {
		return 1
	}
	return 0
}

func (cf *compileFlags) check() error {
	switch {
	case cf.datacenter == "":
		return errors.New("--datacenter must not be empty")
	case cf.trustDomain == "":
		return errors.New("--trust-domain must not be empty")
	case cf.connectTimeout < 0:
		return fmt.Errorf("--override-connect-timeout must be >= 0, not %s", cf.connectTimeout)
	}
	switch cf.meshGateway {
	case "", "none", "local", "remote":
	default:
		return fmt.Errorf("--override-mesh-gateway must be none, local or remote, not %q", cf.meshGateway)
	}
	return nil
}

func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("validate", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.String("addr", "", "ignored: validate works offline")
	files, err := cli.ParseInterspersed(fset, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: storectl validate FILE...")
		return 2
	}
	code := 0
	for _, file := range files {
		if _, err := loadEntryFile(file); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", file, err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: ok\n", file)
	}
	return code
}

// loadEntryFile reads one entry file (HCL or JSON), decodes it and runs
// Normalize and Validate, as a server would before a write.
func loadEntryFile(path string) (chain.Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err // the caller prints the path already
		}
		return nil, err
	}
	e, err := chain.DecodeEntry(data)
	if err != nil {
		return nil, err
	}
	if err := chain.Prepare(e); err != nil {
		return nil, err
	}
	return e, nil
}

// entryDir is the entry set of one --entries directory.
type entryDir struct {
	dir   string
	store *chain.MemStore
	files map[chain.Key]string // the file each entry came from
}

// fileProblem is an error to print as "<file>: <error>".
type fileProblem struct {
	file string
	err  error
}

func (p fileProblem) String() string { return p.file + ": " + p.err.Error() }

// isEntryFile reports whether name is an entry file (*.hcl or *.json).
func isEntryFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".hcl", ".json":
		return true
	}
	return false
}

// loadEntryDir loads every *.hcl and *.json file of dir, in file-name
// order, one entry per file. It reports every bad file, and a second file
// defining the same (kind, name) as an earlier one.
func loadEntryDir(dir string) (*entryDir, []fileProblem) {
	d := &entryDir{dir: dir, store: chain.NewMemStore(), files: map[chain.Key]string{}}
	list, err := os.ReadDir(dir)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return d, []fileProblem{{dir, err}}
	}
	var problems []fileProblem
	for _, de := range list { // sorted by name
		if de.IsDir() || !isEntryFile(de.Name()) {
			continue
		}
		path := filepath.Join(dir, de.Name())
		e, err := loadEntryFile(path)
		if err != nil {
			problems = append(problems, fileProblem{path, err})
			continue
		}
		key := chain.KeyOf(e.GetKind(), e.GetName())
		if prev, dup := d.files[key]; dup {
			problems = append(problems, fileProblem{path, fmt.Errorf("duplicate entry %s, already defined in %s", key, prev)})
			continue
		}
		d.files[key] = path
		d.store.Upsert(e)
	}
	return d, problems
}

// checkGraph runs the checks a server runs on every write
// (docs/discovery-chain.md, Write-time validation) on the
// final set: every chain named by an entry must compile with the fixed
// validation inputs. Each failure is reported against the file of the
// chain's top entry (router, then splitter, resolver, service-defaults).
func (d *entryDir) checkGraph() []fileProblem {
	var names []string
	for _, k := range d.store.Keys() {
		if k.Kind != chain.KindProxyDefaults {
			names = append(names, k.Name)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)

	var problems []fileProblem
	for _, name := range names {
		_, err := chain.Compile(chain.CompileRequest{
			ServiceName:           name,
			EvaluateInNamespace:   chain.DefaultNamespace,
			EvaluateInDatacenter:  chain.DefaultDatacenter,
			EvaluateInTrustDomain: chain.ValidationTrustDomain,
			UseInDatacenter:       chain.DefaultDatacenter,
			Entries:               d.store,
		})
		if err != nil {
			p := fileProblem{d.fileOfChain(name), err}
			if !slices.ContainsFunc(problems, func(q fileProblem) bool { return q.String() == p.String() }) {
				problems = append(problems, p)
			}
		}
	}
	return problems
}

// fileOfChain returns the file of the top entry of name's chain, or of the
// proxy-defaults entry, or the directory itself.
func (d *entryDir) fileOfChain(name string) string {
	for _, kind := range []chain.Kind{
		chain.KindServiceRouter, chain.KindServiceSplitter, chain.KindServiceResolver, chain.KindServiceDefaults,
	} {
		if f, ok := d.files[chain.KeyOf(kind, name)]; ok {
			return f
		}
	}
	if f, ok := d.files[chain.KeyOf(chain.KindProxyDefaults, chain.ProxyDefaultsName)]; ok {
		return f
	}
	return d.dir
}
