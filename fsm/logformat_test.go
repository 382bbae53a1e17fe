package fsm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/chain"
)

// TestEncodeCommandFormatV0 checks that LogFormatV0 writes exactly what
// servers from before log format v1 wrote (and can read), and that those
// bytes decode to the command the v1 bytes decode to.
func TestEncodeCommandFormatV0(t *testing.T) {
	t.Parallel()
	full := inst("a1", "a", time.Minute)
	full.Meta, full.Tags = map[string]string{"v": "1"}, []string{"x"}
	regJSON, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	tok := aclToken("acc", "secret", "p1")
	tokJSON, err := json.Marshal(aclBody{Token: tok, ResetIndex: 9})
	if err != nil {
		t.Fatal(err)
	}
	sd := serviceDefaults("web", "http")
	sdJSON, err := chain.EncodeEntry(sd)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		cmd    Command
		wantV0 []byte
	}{
		"Upsert":       {Command{Op: OpUpsert, Entry: sd}, append([]byte{byte(OpUpsert)}, sdJSON...)},
		"UpsertCAS":    {Command{Op: OpUpsertCAS, Entry: sd, CASIndex: 300}, append([]byte{byte(OpUpsertCAS), 0xac, 0x02}, sdJSON...)},
		"Register":     {Command{Op: OpRegister, Instance: full}, append([]byte{byte(OpRegister)}, regJSON...)},
		"ACLBootstrap": {Command{Op: OpACLBootstrap, ACLToken: tok, ACLResetIndex: 9}, append([]byte{byte(OpACLBootstrap)}, tokJSON...)},
		"Delete":       {Command{Op: OpDelete, Key: sdKey("web")}, nil}, // same in both formats
		"Check":        {Command{Op: OpCheck, InstanceID: "a1", Status: 1, Output: "ok"}, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v1, err := EncodeCommand(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			v0, err := EncodeCommandFormat(tc.cmd, LogFormatV0)
			if err != nil {
				t.Fatalf("EncodeCommandFormat(v0) = %v", err)
			}
			want := tc.wantV0
			if want == nil {
				want = v1
			}
			if !bytes.Equal(v0, want) {
				t.Fatalf("v0 bytes = %q, want %q", v0, want)
			}
			c0, err := DecodeCommand(v0)
			if err != nil {
				t.Fatalf("DecodeCommand(v0) = %v", err)
			}
			c1, err := DecodeCommand(v1)
			if err != nil {
				t.Fatalf("DecodeCommand(v1) = %v", err)
			}
			if diff := cmp.Diff(c0, c1, cmp.Comparer(func(a, b chain.Entry) bool { return chain.EqualEntries(a, b) })); diff != "" {
				t.Fatalf("v0 and v1 decode differently (-v0 +v1):\n%s", diff)
			}
		})
	}
	if _, err := EncodeCommandFormat(Command{Op: OpNoop}, LogFormat(7)); !errors.Is(err, ErrUnknownLogFormat) {
		t.Fatalf("EncodeCommandFormat(format 7) = %v, want %v", err, ErrUnknownLogFormat)
	}
}

// recordingApplier records the commands a Proposer submits and answers
// each with an applied result.
type recordingApplier struct{ got [][]byte }

func (r *recordingApplier) Apply(_ context.Context, cmd []byte) (any, uint64, error) {
	r.got = append(r.got, cmd)
	return ApplyResult{Index: uint64(len(r.got)), Applied: true}, uint64(len(r.got)), nil
}

func TestProposerLogFormat(t *testing.T) {
	t.Parallel()
	r := &recordingApplier{}
	cmd := Command{Op: OpUpsert, Entry: serviceDefaults("web", "http")}
	for _, p := range []*Proposer{NewProposer(r), NewProposer(r).WithLogFormat(LogFormatV0), NewProposer(r).WithLogFormat(LogFormatV1)} {
		if _, err := p.Apply(context.Background(), cmd); err != nil {
			t.Fatal(err)
		}
	}
	want := []Op{wireUpsertV1, OpUpsert, wireUpsertV1}
	for i, b := range r.got {
		if Op(b[0]) != want[i] {
			t.Errorf("proposer %d wrote type byte 0x%02x, want 0x%02x", i, b[0], uint8(want[i]))
		}
	}
}

func TestLogFormatFlag(t *testing.T) {
	t.Parallel()
	var f LogFormat
	for _, tc := range []struct {
		in      string
		want    LogFormat
		wantErr bool
	}{{"v0", LogFormatV0, false}, {"v1", LogFormatV1, false}, {"V1", LogFormatV1, true}, {"", LogFormatV1, true}} {
		f = LogFormatV1
		err := f.Set(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && f != tc.want) {
			t.Errorf("Set(%q) = %v, format %s; want error %v, format %s", tc.in, err, f, tc.wantErr, tc.want)
		}
		if err != nil && !errors.Is(err, ErrUnknownLogFormat) {
			t.Errorf("Set(%q) error %v does not wrap ErrUnknownLogFormat", tc.in, err)
		}
	}
}
