package main

import (
	"io"
	"strings"
	"testing"

	"github.com/chainstore/chainstore/internal/failpoint"
)

// TestBadFailpointsRefuseToStart: a misspelt CHAINSTORE_FAILPOINTS stops
// stored at start-up with an error naming the variable and the point,
// instead of a test that silently injects nothing.
func TestBadFailpointsRefuseToStart(t *testing.T) {
	t.Setenv(failpoint.EnvVar, "fsm/apply/beforeComit=panic")
	_, _, err := parseFlags([]string{"--node", "n1", "--data-dir", t.TempDir()}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), failpoint.EnvVar) || !strings.Contains(err.Error(), `unknown failpoint "fsm/apply/beforeComit"`) {
		t.Fatalf("parseFlags with a bad %s = %v, want an error naming the variable and the point", failpoint.EnvVar, err)
	}
}
