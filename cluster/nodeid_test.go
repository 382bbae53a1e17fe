package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-uuid"
)

func TestLoadOrCreateNodeIDPersists(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data", "server") // created on first use
	id, err := LoadOrCreateNodeID(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateNodeID() first call = %v", err)
	}
	if _, err := uuid.ParseUUID(id); err != nil {
		t.Errorf("node ID %q is not a UUID: %v", id, err)
	}
	again, err := LoadOrCreateNodeID(dir)
	if err != nil || again != id {
		t.Errorf("LoadOrCreateNodeID() second call = %q, %v; want %q, nil", again, err, id)
	}
	b, err := os.ReadFile(filepath.Join(dir, NodeIDFile))
	if err != nil || string(b) != id+"\n" {
		t.Errorf("node-id file = %q, %v; want %q", b, err, id+"\n")
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("data dir holds %v (%v), want only %s (no temp files)", entries, err, NodeIDFile)
	}
	other, err := LoadOrCreateNodeID(t.TempDir())
	if err != nil || other == id {
		t.Errorf("LoadOrCreateNodeID(another dir) = %q, %v; want a different ID", other, err)
	}
}

func TestLoadOrCreateNodeIDFiles(t *testing.T) {
	t.Parallel()
	const valid = "0b3c7a52-6d1e-4f7a-9d7e-2f1c5e9a8b10"
	tests := map[string]struct {
		content string
		want    string
		wantErr error
	}{
		"valid":                 {content: valid + "\n", want: valid},
		"surrounding space":     {content: "  " + valid + "\r\n\n", want: valid},
		"empty":                 {content: "", wantErr: ErrCorruptNodeID},
		"not a UUID":            {content: "n1\n", wantErr: ErrCorruptNodeID},
		"truncated UUID":        {content: valid[:20], wantErr: ErrCorruptNodeID},
		"binary garbage":        {content: "\x00\xff\x10", wantErr: ErrCorruptNodeID},
		"two IDs on two lines":  {content: valid + "\n" + valid + "\n", wantErr: ErrCorruptNodeID},
		"UUID with extra chars": {content: valid + "x", wantErr: ErrCorruptNodeID},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, NodeIDFile)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadOrCreateNodeID(dir)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("LoadOrCreateNodeID() = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Errorf("node-id file changed to %q", b)
			}
		})
	}
}

func TestLoadOrCreateNodeIDEmptyDir(t *testing.T) {
	t.Parallel()
	if _, err := LoadOrCreateNodeID(""); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("LoadOrCreateNodeID(\"\") = %v, want ErrInvalidConfig", err)
	}
}
