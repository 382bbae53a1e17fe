package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// ReadJournal parses an apply journal written by stored
// --test-apply-journal: one JSON JournalRecord per line. The workload
// value of each upsert is derived from its entry (ValueOf). A torn last
// line (the process was killed in the middle of a write) is ignored; any
// other bad line is an error wrapping ErrBadJournal.
func ReadJournal(r io.Reader) ([]JournalRecord, error) {
	var out []JournalRecord
	br := bufio.NewReader(r)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		complete := err == nil
		if err != nil && err != io.EOF {
			return out, fmt.Errorf("read journal: %w", err)
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			var rec JournalRecord
			if jerr := json.Unmarshal(line, &rec); jerr != nil {
				if !complete {
					return out, nil // torn final write
				}
				return out, fmt.Errorf("line %d: %v: %w", lineNo, jerr, ErrBadJournal)
			}
			if rec.Value == "" && len(rec.Entry) > 0 {
				v, verr := ValueOfJSON(rec.Entry)
				if verr != nil {
					return out, fmt.Errorf("line %d: %v: %w", lineNo, verr, ErrBadJournal)
				}
				rec.Value = v
			}
			out = append(out, rec)
		}
		if !complete {
			return out, nil
		}
	}
}

// ReadJournalFile is ReadJournal on a file; a missing file is an empty
// journal.
func ReadJournalFile(path string) ([]JournalRecord, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	defer func() { _ = f.Close() }()
	recs, err := ReadJournal(f)
	if err != nil {
		return recs, fmt.Errorf("journal %s: %w", path, err)
	}
	return recs, nil
}
