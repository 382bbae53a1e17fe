package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/chainstore/chainstore/api"
)

// AddrEnv names the environment variable holding the default --addr of
// storectl and storeagent.
const AddrEnv = "STORE_ADDR"

// DefaultAddr returns the default --addr: $STORE_ADDR, or api.DefaultAddr
// when that is unset or empty.
func DefaultAddr() string {
	if a := os.Getenv(AddrEnv); a != "" {
		return a
	}
	return api.DefaultAddr
}

// AddrFlag registers --addr (comma-separated server gRPC addresses) into p,
// with DefaultAddr as its default; usage gets " (env STORE_ADDR)" appended.
func AddrFlag(fs *flag.FlagSet, p *string, usage string) {
	fs.StringVar(p, "addr", DefaultAddr(), usage+" (env "+AddrEnv+")")
}

// ParseAddrs splits an --addr value ("host:port,host:port", spaces and
// empty items dropped, as api.SplitAddrs) and refuses a value naming no
// address. The host:port form of each address is checked where the
// addresses are used, by api.NewClient and api.NewChainWatchClient.
func ParseAddrs(s string) ([]string, error) {
	addrs := api.SplitAddrs(s)
	if len(addrs) == 0 {
		return nil, errors.New("--addr: at least one address is needed")
	}
	return addrs, nil
}

// JSONFlag registers the boolean --json flag ("print JSON").
func JSONFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("json", false, "print JSON")
}

// ParseInterspersed parses flags written before, between or after the
// positional arguments and returns the positional ones, in order.
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// HideFlags makes fs's usage text (-h, and after a parse error) leave out
// the flags whose names start with prefix. They stay registered and parse
// as before; only the listing skips them. The text is otherwise the
// default one: "Usage of NAME:" and flag.PrintDefaults' format.
func HideFlags(fs *flag.FlagSet, prefix string) {
	fs.Usage = func() {
		shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		shown.SetOutput(fs.Output())
		fs.VisitAll(func(f *flag.Flag) {
			if strings.HasPrefix(f.Name, prefix) {
				return
			}
			shown.Var(f.Value, f.Name, f.Usage)
			// Var records the current value as the default; the listing
			// must show the registered default even after a partial parse.
			shown.Lookup(f.Name).DefValue = f.DefValue
		})
		if fs.Name() == "" {
			fmt.Fprintf(fs.Output(), "Usage:\n")
		} else {
			fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
		}
		shown.PrintDefaults()
	}
}
