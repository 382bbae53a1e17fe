package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// PrintJSON writes v to stdout as JSON indented by four spaces, with a
// final newline, and returns exit code 0; when v cannot be encoded it
// writes "Error encoding JSON: ..." to stderr and returns 1.
func PrintJSON(stdout, stderr io.Writer, v any) int {
	out, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		fmt.Fprintf(stderr, "Error encoding JSON: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}

// WriteTable writes rows as aligned columns: cells are left-aligned and
// separated by at least padding spaces; a row may have fewer cells.
func WriteTable(w io.Writer, padding int, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, padding, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
