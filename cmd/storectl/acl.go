package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/cmd/internal/cli"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// aclCommands is the acl group: bootstrap, and the policy and token
// subcommand groups of the ACLService (docs/acl.md).
func aclCommands() commandTable {
	return commandTable{{
		Name:    "acl",
		Summary: "manage ACLs: acl bootstrap | acl policy create|list|read|delete | acl token create|list|read|delete",
		Run:     groupRunner("acl", aclSubcommands),
	}}
}

func aclSubcommands() commandTable {
	return commandTable{
		{Name: "bootstrap", Summary: "create the first management token (once) and print its AccessorID and SecretID", Run: runACLBootstrap},
		{Name: "policy", Summary: "policy create --name N --rules @FILE|-|RULES [--description D] | list | read|delete --name N|--id ID", Run: groupRunner("acl policy", aclPolicySubcommands)},
		{Name: "token", Summary: "token create --policy-name N... [--description D] | list | read|delete --accessor-id ID", Run: groupRunner("acl token", aclTokenSubcommands)},
	}
}

func aclPolicySubcommands() commandTable {
	return commandTable{
		{Name: "create", Summary: "create a policy: create --name N --rules @FILE|-|RULES [--description D]", Run: runACLPolicyCreate},
		{Name: "list", Summary: "list the policies: list [--json]", Run: runACLPolicyList},
		{Name: "read", Summary: "show a policy: read --name N|--id ID [--json]", Run: runACLPolicyRead},
		{Name: "delete", Summary: "delete a policy: delete --name N|--id ID", Run: runACLPolicyDelete},
	}
}

func aclTokenSubcommands() commandTable {
	return commandTable{
		{Name: "create", Summary: "create a token: create --policy-name N [--policy-name N2...] [--description D]", Run: runACLTokenCreate},
		{Name: "list", Summary: "list the tokens (never their secrets): list [--json]", Run: runACLTokenList},
		{Name: "read", Summary: "show a token: read --accessor-id ID [--json]", Run: runACLTokenRead},
		{Name: "delete", Summary: "delete a token: delete --accessor-id ID", Run: runACLTokenDelete},
	}
}

// groupRunner dispatches to a subcommand of table, as runCatalog does:
// the global flags are passed on in front of the subcommand's arguments.
func groupRunner(name string, table func() commandTable) cli.RunFunc {
	usage := func(w io.Writer) {
		table().PrintUsage(w, "usage: storectl [--addr host:port[,host:port...]] [--token SECRET] "+name+" SUBCOMMAND [ARGS]\n\nsubcommands:", 10)
	}
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		global, rest := splitGlobalFlags(args)
		if len(rest) == 0 && slices.ContainsFunc(global, isHelpFlag) {
			rest = []string{"--help"}
		}
		c, err := table().Select(rest)
		switch {
		case errors.Is(err, flag.ErrHelp):
			usage(stderr)
			return 0
		case errors.Is(err, cli.ErrNoCommand):
			usage(stderr)
			return 2
		case err != nil:
			fmt.Fprintf(stderr, "storectl %s: %v\n", name, err)
			usage(stderr)
			return 2
		}
		return c.Run(ctx, append(global, rest[1:]...), stdout, stderr)
	}
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// aclQuery parses the connection flags (and the caller's, registered by
// setup) and runs one call; usage errors exit 2, failures 1.
func aclQuery(ctx context.Context, args []string, stdout, stderr io.Writer, name, errPrefix string,
	setup func(fs *flag.FlagSet) func() error,
	call func(ctx context.Context, c chainstorev1.ACLServiceClient) (output, error),
) int {
	fs, cf := newFlagSet(name, stderr)
	check := setup(fs)
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "storectl %s: unexpected arguments: %s\n", name, strings.Join(pos, " "))
		return 2
	}
	if err := check(); err != nil {
		fmt.Fprintf(stderr, "storectl %s: %v\n", name, err)
		return 2
	}
	return cf.query(ctx, stdout, stderr, errPrefix, func(ctx context.Context, c *api.Client) (output, error) {
		return call(ctx, c.ACL())
	})
}

func noCheck() error { return nil }

func runACLBootstrap(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return aclQuery(ctx, args, stdout, stderr, "acl bootstrap", "Failed ACL bootstrapping",
		func(*flag.FlagSet) func() error { return noCheck },
		func(ctx context.Context, c chainstorev1.ACLServiceClient) (output, error) {
			resp, err := c.Bootstrap(ctx, &chainstorev1.BootstrapRequest{})
			if err != nil {
				return output{}, err
			}
			return output{text: formatToken(resp.GetToken())}, nil
		})
}

// formatToken renders a token as Consul's CLI does.
func formatToken(t *chainstorev1.ACLToken) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "AccessorID:       %s\n", t.GetAccessorId())
	if t.GetSecretId() != "" {
		fmt.Fprintf(&b, "SecretID:         %s\n", t.GetSecretId())
	}
	fmt.Fprintf(&b, "Description:      %s\n", t.GetDescription())
	fmt.Fprintf(&b, "Create Index:     %d\n", t.GetCreateIndex())
	b.WriteString("Policies:\n")
	for _, p := range t.GetPolicies() {
		fmt.Fprintf(&b, "   %s - %s\n", p.GetId(), p.GetName())
	}
	return b.Bytes()
}

// formatPolicy renders a policy as Consul's CLI does.
func formatPolicy(p *chainstorev1.ACLPolicy, withRules bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "ID:           %s\n", p.GetId())
	fmt.Fprintf(&b, "Name:         %s\n", p.GetName())
	fmt.Fprintf(&b, "Description:  %s\n", p.GetDescription())
	if withRules {
		b.WriteString("Rules:\n")
		b.WriteString(p.GetRules())
		if !strings.HasSuffix(p.GetRules(), "\n") {
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// maxRulesInput bounds what --rules reads from a file or stdin; the server
// refuses anything over 64 KiB anyway.
const maxRulesInput = 64<<10 + 1

// readRules resolves --rules: @FILE, - (stdin) or the rules themselves.
func readRules(v string, stdin io.Reader) (string, error) {
	var r io.Reader
	switch {
	case v == "-":
		r = stdin
	case strings.HasPrefix(v, "@"):
		f, err := os.Open(v[1:])
		if err != nil {
			return "", fmt.Errorf("--rules: %w", err)
		}
		defer func() { _ = f.Close() }()
		r = f
	default:
		return v, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, maxRulesInput))
	if err != nil {
		return "", fmt.Errorf("--rules: %w", err)
	}
	if len(b) >= maxRulesInput {
		return "", fmt.Errorf("--rules: more than %d bytes", maxRulesInput-1)
	}
	return string(b), nil
}

// stdin is where `--rules -` reads from (a variable for tests).
var stdin io.Reader = os.Stdin

func runACLPolicyCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var name, rules, description string
	return aclQuery(ctx, args, stdout, stderr, "acl policy create", "Failed to create new policy",
		func(fs *flag.FlagSet) func() error {
			fs.StringVar(&name, "name", "", "policy name")
			fs.StringVar(&rules, "rules", "", "rules: @FILE, - for stdin, or the rules themselves (HCL or JSON)")
			fs.StringVar(&description, "description", "", "description")
			return func() error {
				if name == "" || rules == "" {
					return errors.New("--name and --rules are required")
				}
				var err error
				rules, err = readRules(rules, stdin)
				return err
			}
		},
		func(ctx context.Context, c chainstorev1.ACLServiceClient) (output, error) {
			resp, err := c.PolicyCreate(ctx, &chainstorev1.PolicyCreateRequest{Name: name, Description: description, Rules: rules})
			if err != nil {
				return output{}, err
			}
			return output{text: formatPolicy(resp.GetPolicy(), true)}, nil
		})
}

func runACLPolicyList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var asJSON *bool
	return aclQuery(ctx, args, stdout, stderr, "acl policy list", "Failed to retrieve the policy list",
		func(fs *flag.FlagSet) func() error { asJSON = cli.JSONFlag(fs); return noCheck },
		func(ctx context.Context, c chainstorev1.ACLServiceClient) (output, error) {
			resp, err := c.PolicyList(ctx, &chainstorev1.PolicyListRequest{})
			if err != nil {
				return output{}, err
			}
			if *asJSON {
				return output{json: resp.GetPolicies()}, nil
			}
			var b bytes.Buffer
			for i, p := range resp.GetPolicies() {
				if i > 0 {
					b.WriteString("\n")
				}
				b.Write(formatPolicy(p, false))
			}
			return output{text: b.Bytes()}, nil
		})
}

// policyRef registers --name and --id and checks that one is given.
func policyRef(fs *flag.FlagSet, name, id *string) func() error {
	fs.StringVar(name, "name", "", "policy name")
	fs.StringVar(id, "id", "", "policy ID")
	return func() error {
		if (*name == "") == (*id == "") {
			return errors.New("give exactly one of --name and --id")
		}
		return nil
	}
}

func runACLPolicyRead(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var name, id string
	var asJSON *bool
	return aclQuery(ctx, args, stdout, stderr, "acl policy read", "Error reading policy",
		func(fs *flag.FlagSet) func() error { asJSON = cli.JSONFlag(fs); return policyRef(fs, &name, &id) },
		func(ctx context.Context, c chainstorev1.ACLServiceClient) (output, error) {
			resp, err := c.PolicyRead(ctx, &chainstorev1.PolicyReadRequest{Name: name, Id: id})
			if err != nil {
				return output{}, err
			}
			if *asJSON {
				return output{json: resp.GetPolicy()}, nil
			}
			return output{text: formatPolicy(resp.GetPolicy(), true)}, nil
		})
}

func runACLPolicyDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var name, id string
	return aclQuery(ctx, args, stdout, stderr, "acl policy delete", "Error deleting policy",
		func(fs *flag.FlagSet) func() error { return policyRef(fs, &name, &id) },
		func(ctx context.Context, c chainstorev1.ACLServiceClient) (output, error) {
			if _, err := c.PolicyDelete(ctx, &chainstorev1.PolicyDeleteRequest{Name: name, Id: id}); err != nil {
				return output{}, err
			}
			what := name
			if what == "" {
				what = id
			}
			return output{text: fmt.Appendf(nil, "Policy %q deleted successfully\n", what)}, nil
		})
}

func runACLTokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var policies multiFlag
	var description string
	return aclQuery(ctx, args, stdout, stderr, "acl token create", "Failed to create new token",
		func(fs *flag.FlagSet) func() error {
			fs.Var(&policies, "policy-name", "name of a policy the token holds (repeatable)")
			fs.StringVar(&description, "description", "", "description")
			return func() error {
				if len(policies) == 0 {
					return errors.New("at least one --policy-name is required")
				}
				return nil
			}
		},
		func(ctx context.Context, c chainstorev1.ACLServiceClient) (output, error) {
			resp, err := c.TokenCreate(ctx, &chainstorev1.TokenCreateRequest{Description: description, PolicyNames: policies})
			if err != nil {
				return output{}, err
			}
			return output{text: formatToken(resp.GetToken())}, nil
		})
}

func runACLTokenList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var asJSON *bool
	return aclQuery(ctx, args, stdout, stderr, "acl token list", "Failed to retrieve the token list",
		func(fs *flag.FlagSet) func() error { asJSON = cli.JSONFlag(fs); return noCheck },
		func(ctx context.Context, c chainstorev1.ACLServiceClient) (output, error) {
			resp, err := c.TokenList(ctx, &chainstorev1.TokenListRequest{})
			if err != nil {
				return output{}, err
			}
			if *asJSON {
				return output{json: resp.GetTokens()}, nil
			}
			var b bytes.Buffer
			for i, t := range resp.GetTokens() {
				if i > 0 {
					b.WriteString("\n")
				}
				b.Write(formatToken(t))
			}
			return output{text: b.Bytes()}, nil
		})
}

// tokenRef registers --accessor-id and checks it is given.
func tokenRef(fs *flag.FlagSet, id *string) func() error {
	fs.StringVar(id, "accessor-id", "", "the token's AccessorID")
	return func() error {
		if *id == "" {
			return errors.New("--accessor-id is required")
		}
		return nil
	}
}

func runACLTokenRead(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var id string
	var asJSON *bool
	return aclQuery(ctx, args, stdout, stderr, "acl token read", "Error reading token",
		func(fs *flag.FlagSet) func() error { asJSON = cli.JSONFlag(fs); return tokenRef(fs, &id) },
		func(ctx context.Context, c chainstorev1.ACLServiceClient) (output, error) {
			resp, err := c.TokenRead(ctx, &chainstorev1.TokenReadRequest{AccessorId: id})
			if err != nil {
				return output{}, err
			}
			if *asJSON {
				return output{json: resp.GetToken()}, nil
			}
			return output{text: formatToken(resp.GetToken())}, nil
		})
}

func runACLTokenDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var id string
	return aclQuery(ctx, args, stdout, stderr, "acl token delete", "Error deleting token",
		func(fs *flag.FlagSet) func() error { return tokenRef(fs, &id) },
		func(ctx context.Context, c chainstorev1.ACLServiceClient) (output, error) {
			if _, err := c.TokenDelete(ctx, &chainstorev1.TokenDeleteRequest{AccessorId: id}); err != nil {
				return output{}, err
			}
			return output{text: fmt.Appendf(nil, "Token %q deleted successfully\n", id)}, nil
		})
}
