package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Command is one subcommand: its name, the one-line summary the usage
// text shows, and what runs it (a RunFunc, or a tool's own shape).
type Command[R any] struct {
	Name    string
	Summary string
	Run     R
}

// Table is a tool's subcommands. Order does not matter: usage lists them
// sorted by name.
type Table[R any] []Command[R]

// ErrNoCommand is Select's error for a command line without a command.
var ErrNoCommand = errors.New("no command given")

// UnknownCommandError is Select's error for a name the table lacks.
type UnknownCommandError struct{ Name string }

func (e *UnknownCommandError) Error() string { return fmt.Sprintf("unknown command %q", e.Name) }

// Lookup returns the command called name.
func (t Table[R]) Lookup(name string) (Command[R], bool) {
	i := slices.IndexFunc(t, func(c Command[R]) bool { return c.Name == name })
	if i < 0 {
		return Command[R]{}, false
	}
	return t[i], true
}

// Select returns the command args[0] names. It returns ErrNoCommand for
// empty args, flag.ErrHelp for "-h", "--help" or "help", and an
// *UnknownCommandError otherwise; printing usage is left to the caller.
func (t Table[R]) Select(args []string) (Command[R], error) {
	if len(args) == 0 {
		return Command[R]{}, ErrNoCommand
	}
	switch args[0] {
	case "-h", "--help", "help":
		return Command[R]{}, flag.ErrHelp
	}
	c, ok := t.Lookup(args[0])
	if !ok {
		return Command[R]{}, &UnknownCommandError{Name: args[0]}
	}
	return c, nil
}

// PrintUsage writes head on a line of its own, then one line per command,
// sorted by name: two spaces, the name left-aligned in nameWidth columns,
// a space and the summary.
func (t Table[R]) PrintUsage(w io.Writer, head string, nameWidth int) {
	fmt.Fprintln(w, head)
	sorted := slices.SortedFunc(slices.Values(t), func(a, b Command[R]) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-*s %s\n", nameWidth, c.Name, c.Summary)
	}
}
