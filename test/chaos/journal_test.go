package chaos

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chainstore/chainstore/chain"
)

func TestReadJournal(t *testing.T) {
	t.Parallel()
	e, err := EntryFor(chain.KeyOf(chain.KindServiceResolver, "svc-1"), "c3-9")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := chain.EncodeEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	good := `{"node":"n1","type":"apply","index":7,"term":2,"op":"upsert","key":{"Kind":"service-resolver","Name":"svc-1"},"entry":` + string(raw) + `,"applied":true,"hash":"abc"}` + "\n" +
		`{"node":"n1","type":"apply","index":8,"term":2,"op":"delete","key":{"Kind":"service-resolver","Name":"svc-1"},"applied":true}` + "\n"
	tests := map[string]struct {
		in      string
		want    int
		wantErr bool
	}{
		"two records":        {in: good, want: 2},
		"empty":              {in: "", want: 0},
		"torn last line":     {in: good + `{"node":"n1","type":"ap`, want: 2},
		"bad line in middle": {in: `{"x":` + "\n" + good, wantErr: true},
		"blank lines":        {in: "\n" + good + "\n\n", want: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			recs, err := ReadJournal(strings.NewReader(tc.in))
			if tc.wantErr {
				if !errors.Is(err, ErrBadJournal) {
					t.Fatalf("ReadJournal = %v, want ErrBadJournal", err)
				}
				return
			}
			if err != nil || len(recs) != tc.want {
				t.Fatalf("ReadJournal = %d records, %v; want %d", len(recs), err, tc.want)
			}
			if tc.want > 0 && (recs[0].Value != "c3-9" || recs[0].Index != 7 || recs[0].Hash != "abc") {
				t.Errorf("first record = %+v, want value c3-9 (from the entry), index 7, hash abc", recs[0])
			}
		})
	}
}

func TestReadJournalFile(t *testing.T) {
	t.Parallel()
	recs, err := ReadJournalFile(filepath.Join(t.TempDir(), "missing.jsonl"))
	if err != nil || recs != nil {
		t.Fatalf("missing file: %v, %v; want empty journal", recs, err)
	}
	path := filepath.Join(t.TempDir(), "j.jsonl")
	if err := os.WriteFile(path, []byte("{\"type\":\"apply\",\"index\":1,\"op\":\"noop\",\"applied\":true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err = ReadJournalFile(path)
	if err != nil || len(recs) != 1 || recs[0].Op != "noop" {
		t.Fatalf("ReadJournalFile = %+v, %v", recs, err)
	}
}
