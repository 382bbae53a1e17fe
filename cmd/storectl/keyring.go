package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/cmd/internal/cli"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// keyringCommands is the keyring group: gossip encryption keys. list,
// install, use and remove reach every live server through the one at
// --addr (OperatorService.Keyring*); generate prints a new key offline.
func keyringCommands() commandTable {
	return commandTable{{
		Name:    "keyring",
		Summary: "gossip encryption keys: keyring generate | list | install KEY | use KEY | remove KEY",
		Run:     runKeyring,
	}}
}

func keyringSubcommands() commandTable {
	return commandTable{
		{Name: "generate", Summary: "print a new random 32-byte key (base64), for stored --encrypt", Run: runKeyringGenerate},
		{Name: "list", Summary: "list each server's keys, primary first", Run: runKeyringList},
		{Name: "install", Summary: "install KEY: add a key on every server (accepted, not yet sent with)", Run: keyringChange("install")},
		{Name: "use", Summary: "use KEY: make an installed key the one every server sends with", Run: keyringChange("use")},
		{Name: "remove", Summary: "remove KEY: remove a key no server uses any more", Run: keyringChange("remove")},
	}
}

func runKeyring(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runGroup(ctx, args, stdout, stderr, "keyring", keyringSubcommands())
}

func runKeyringGenerate(_ context.Context, _ []string, stdout, stderr io.Writer) int {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		fmt.Fprintf(stderr, "storectl keyring generate: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(k))
	return 0
}

// keyringResponse is what every keyring response has.
type keyringResponse interface {
	GetNodes() []*chainstorev1.KeyringNodeResult
	GetFailed() int32
}

// keyringNodeJSON is one server of the keyring commands' --json output.
type keyringNodeJSON struct {
	Node  string   `json:"node"`
	Keys  []string `json:"keys,omitempty"`
	Error string   `json:"error,omitempty"`
}

// renderKeyring prints one line per server; the call fails if any
// server failed.
func renderKeyring(resp keyringResponse, asJSON bool, verb string) (output, error) {
	var out output
	if asJSON {
		rows := []keyringNodeJSON{}
		for _, n := range resp.GetNodes() {
			rows = append(rows, keyringNodeJSON{n.GetNode(), n.GetKeys(), n.GetError()})
		}
		out = output{json: rows}
	} else {
		var b strings.Builder
		for _, n := range resp.GetNodes() {
			switch {
			case n.GetError() != "":
				fmt.Fprintf(&b, "%s: error: %s\n", n.GetNode(), n.GetError())
			case verb == "":
				fmt.Fprintf(&b, "%s: %s\n", n.GetNode(), strings.Join(n.GetKeys(), " "))
			default:
				fmt.Fprintf(&b, "%s: %s\n", n.GetNode(), verb)
			}
		}
		out = output{text: []byte(b.String())}
	}
	if resp.GetFailed() > 0 {
		return output{}, fmt.Errorf("%d of %d servers failed:\n%s", resp.GetFailed(), len(resp.GetNodes()), out.text)
	}
	return out, nil
}

func runKeyringList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("keyring list", stderr)
	asJSON := cli.JSONFlag(fs)
	if _, err := cli.ParseInterspersed(fs, args); err != nil {
		return exitForParse(err)
	}
	return cf.query(ctx, stdout, stderr, "Error listing keys", func(ctx context.Context, c *api.Client) (output, error) {
		resp, err := c.KeyringList(ctx, &chainstorev1.KeyringListRequest{})
		if err != nil {
			return output{}, err
		}
		return renderKeyring(resp, *asJSON, "")
	})
}

// keyringChange returns the command for install, use or remove.
func keyringChange(op string) cli.RunFunc {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		fs, cf := newFlagSet("keyring "+op, stderr)
		asJSON := cli.JSONFlag(fs)
		pos, err := cli.ParseInterspersed(fs, args)
		if err != nil {
			return exitForParse(err)
		}
		if len(pos) != 1 {
			fmt.Fprintf(stderr, "usage: storectl keyring %s KEY\n", op)
			return 2
		}
		key := pos[0]
		return cf.query(ctx, stdout, stderr, "Error changing the keyring", func(ctx context.Context, c *api.Client) (output, error) {
			var resp keyringResponse
			var err error
			switch op {
			case "install":
				resp, err = c.KeyringInstall(ctx, &chainstorev1.KeyringInstallRequest{Key: key})
			case "use":
				resp, err = c.KeyringUse(ctx, &chainstorev1.KeyringUseRequest{Key: key})
			default:
				resp, err = c.KeyringRemove(ctx, &chainstorev1.KeyringRemoveRequest{Key: key})
			}
			if err != nil {
				return output{}, err
			}
			return renderKeyring(resp, *asJSON, "key "+op+" done")
		})
	}
}
