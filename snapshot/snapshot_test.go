package snapshot

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func testHeader(payload []byte) Header {
	return Header{Datacenter: "dc1", Node: "n1", Index: 42, Term: 3,
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ServerVersion: "v1.2.3", Size: int64(len(payload))}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	payload := bytes.Repeat([]byte("state"), 1000)
	file, err := Encode(testHeader(payload), payload)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	h, got, err := Read(bytes.NewReader(file), DefaultMaxSize)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if h != testHeader(payload) || !bytes.Equal(got, payload) {
		t.Fatalf("Read = %+v, %d bytes; want %+v, %d bytes", h, len(got), testHeader(payload), len(payload))
	}
	if err := h.CheckDatacenter("dc1"); err != nil {
		t.Errorf("CheckDatacenter(dc1) = %v", err)
	}
	if err := h.CheckDatacenter("dc2"); !errors.Is(err, ErrWrongDatacenter) {
		t.Errorf("CheckDatacenter(dc2) = %v, want ErrWrongDatacenter", err)
	}
}

// TestReadRefuses: every kind of damage is refused with the error that
// names it; no byte of a file can be changed unnoticed.
func TestReadRefuses(t *testing.T) {
	t.Parallel()
	payload := []byte("some fsm state")
	file, err := Encode(testHeader(payload), payload)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	newer := bytes.Clone(file)
	newer[9] = 2
	cases := map[string]struct {
		file []byte
		max  int64
		want error
		text string
	}{
		"empty":          {nil, DefaultMaxSize, ErrNotSnapshot, "shorter than a snapshot header"},
		"hcl file":       {[]byte("kind = \"service-defaults\"\n"), DefaultMaxSize, ErrNotSnapshot, "starts with"},
		"newer version":  {newer, DefaultMaxSize, ErrUnsupportedVersion, "version 2"},
		"truncated":      {file[:len(file)-1], DefaultMaxSize, ErrCorrupt, "checksum is missing"},
		"no payload":     {file[:40], DefaultMaxSize, ErrCorrupt, "truncated"},
		"trailing bytes": {append(bytes.Clone(file), 0), DefaultMaxSize, ErrCorrupt, "trailing"},
		"too large":      {file, int64(len(file) - 1), ErrTooLarge, "limit"},
	}
	for name, tc := range cases {
		_, _, err := Read(bytes.NewReader(tc.file), tc.max)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: Read error = %v, want %v containing %q", name, err, tc.want, tc.text)
		}
	}
	// Flip each byte after the magic and version in turn: always refused.
	for i := 10; i < len(file); i++ {
		bad := bytes.Clone(file)
		bad[i] ^= 0x01
		if _, _, err := Read(bytes.NewReader(bad), DefaultMaxSize); err == nil {
			t.Fatalf("byte %d flipped: Read accepted the file", i)
		}
	}
}

func TestWriteChecksHeader(t *testing.T) {
	t.Parallel()
	h := testHeader([]byte("x"))
	if _, err := Encode(h, []byte("xy")); err == nil {
		t.Error("Encode with a wrong size succeeded")
	}
	h.Datacenter = ""
	if _, err := Encode(h, []byte("x")); err == nil || !strings.Contains(err.Error(), "datacenter") {
		t.Errorf("Encode without datacenter = %v", err)
	}
}
