package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/chainstore/chainstore/cmd/internal/cli"
	"github.com/chainstore/chainstore/tlsutil"
)

// tlsCommands is the tls group: `storectl tls ca create` and `storectl
// tls cert create`, which write a CA and certificates signed by it (PEM,
// ECDSA P-256, keys mode 0600) as `consul tls` does. Offline: no server
// is contacted.
func tlsCommands() commandTable {
	return commandTable{{
		Name:    "tls",
		Summary: "create a CA and certificates: tls ca create | tls cert create --server|--client [--node N]",
		Run:     runTLS,
	}}
}

func tlsSubcommands() commandTable {
	return commandTable{
		{Name: "ca", Summary: "ca create [--dir D] [--days N]: write D/ca.pem and D/ca-key.pem", Run: runTLSCA},
		{Name: "cert", Summary: "cert create --server|--client [--node N] [--dc D] [--dir D] [--ca F] [--ca-key F] [--days N]", Run: runTLSCert},
	}
}

// runGroup dispatches to a subcommand of a group.
func runGroup(ctx context.Context, args []string, stdout, stderr io.Writer, group string, table commandTable) int {
	global, rest := splitGlobalFlags(args)
	if len(rest) == 0 && slices.ContainsFunc(global, isHelpFlag) {
		rest = []string{"--help"}
	}
	usage := func() {
		table.PrintUsage(stderr, "usage: storectl "+group+" SUBCOMMAND [ARGS]\n\nsubcommands:", 10)
	}
	c, err := table.Select(rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return 0
	case errors.Is(err, cli.ErrNoCommand):
		usage()
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "storectl %s: %v\n", group, err)
		usage()
		return 2
	}
	return c.Run(ctx, append(global, rest[1:]...), stdout, stderr)
}

func runTLS(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runGroup(ctx, args, stdout, stderr, "tls", tlsSubcommands())
}

// wantCreate checks that the positional arguments are exactly "create".
func wantCreate(stderr io.Writer, cmd string, pos []string) bool {
	if len(pos) != 1 || pos[0] != "create" {
		fmt.Fprintf(stderr, "usage: storectl tls %s create [flags]\n", cmd)
		return false
	}
	return true
}

func runTLSCA(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tls ca", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "directory to write ca.pem and ca-key.pem into")
	days := fs.Int("days", 1825, "validity in days")
	cn := fs.String("common-name", "chainstore CA", "the CA's common name")
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if !wantCreate(stderr, "ca", pos) {
		return 2
	}
	ca, keyPEM, err := tlsutil.GenerateCA(*cn, *days)
	if err != nil {
		fmt.Fprintf(stderr, "storectl tls ca create: %v\n", err)
		return 1
	}
	certFile, keyFile := filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca-key.pem")
	if err := tlsutil.WriteFiles(certFile, ca.CertPEM, keyFile, keyPEM); err != nil {
		fmt.Fprintf(stderr, "storectl tls ca create: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "==> Saved %s\n==> Saved %s\n", certFile, keyFile)
	return 0
}

func runTLSCert(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tls cert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.Bool("server", false, "create a server certificate (server.<dc>.chainstore, and <node>.server.<dc>.chainstore with --node)")
	client := fs.Bool("client", false, "create a client certificate (client.<dc>.chainstore)")
	node := fs.String("node", "", "the server's node name (--server): the certificate then proves that name")
	dc := fs.String("dc", "dc1", "datacenter")
	dir := fs.String("dir", ".", "directory to write the certificate and key into")
	caFile := fs.String("ca", "ca.pem", "CA certificate")
	caKey := fs.String("ca-key", "ca-key.pem", "CA key")
	days := fs.Int("days", 365, "validity in days")
	name := fs.String("name", "", "file base name (default: server-<node>, server or client)")
	var dnsNames, ips stringList
	fs.Var(&dnsNames, "additional-dnsname", "extra DNS name (repeatable)")
	fs.Var(&ips, "additional-ipaddress", "extra IP address (repeatable)")
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if !wantCreate(stderr, "cert", pos) {
		return 2
	}
	if *server == *client {
		fmt.Fprintln(stderr, "storectl tls cert create: give exactly one of --server and --client")
		return 2
	}
	if *client && *node != "" {
		fmt.Fprintln(stderr, "storectl tls cert create: --node is for server certificates")
		return 2
	}
	opts := tlsutil.CertOptions{Kind: tlsutil.KindClient, Datacenter: *dc, Days: *days, ExtraDNS: dnsNames, Node: *node}
	base := "client"
	if *server {
		opts.Kind, base = tlsutil.KindServer, "server"
		if *node != "" {
			base = "server-" + *node
		}
	}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			fmt.Fprintf(stderr, "storectl tls cert create: --additional-ipaddress %q is not an IP address\n", s)
			return 2
		}
		opts.ExtraIPs = append(opts.ExtraIPs, ip)
	}
	if *name != "" {
		base = *name
	}
	ca, err := tlsutil.LoadCA(*caFile, *caKey)
	if err != nil {
		fmt.Fprintf(stderr, "storectl tls cert create: %v\n", err)
		return 1
	}
	certPEM, keyPEM, err := ca.GenerateCert(opts)
	if err != nil {
		fmt.Fprintf(stderr, "storectl tls cert create: %v\n", err)
		return 1
	}
	certFile, keyFile := filepath.Join(*dir, base+".pem"), filepath.Join(*dir, base+"-key.pem")
	if err := tlsutil.WriteFiles(certFile, certPEM, keyFile, keyPEM); err != nil {
		fmt.Fprintf(stderr, "storectl tls cert create: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "==> Saved %s\n==> Saved %s\n", certFile, keyFile)
	return 0
}

// exitForParse is the exit code after a flag parse error (0 for -h).
func exitForParse(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}
