package cluster

import (
	"encoding/binary"
	"fmt"
)

// metaVersion is the encoding version of nodeMeta written by this build.
//
// Compatibility rule: fields are only ever appended. A decoder of version N
// reads the fields it knows and ignores trailing bytes, so a newer peer that
// appends a field in a minor change stays readable by keeping version 1. A
// change that breaks the layout bumps the version, and older decoders reject
// the peer (it is then ignored by bootstrap and reconcile, never guessed at).
const metaVersion = 1

// metaMaxSize is memberlist's limit on node metadata (memberlist.MetaMaxSize).
// memberlist panics in UpdateNode above it, so Validate checks the worst case.
const metaMaxSize = 512

// Flag bits of the nodeMeta flags byte. Unknown bits are ignored on decode.
const (
	metaFlagHasState = 1 << 0 // the node's Raft data dir holds state
	metaFlagLeaving  = 1 << 1 // the node is leaving gracefully (Leave called)
)

// nodeMeta is what every server gossips about itself (memberlist
// Delegate.NodeMeta). Layout, version 1:
//
//	byte     version (1)
//	byte     flags (metaFlagHasState, metaFlagLeaving)
//	uvarint  bootstrap_expect
//	8 bytes  bootstrap hash, big endian (0: did not bootstrap in this run)
//	4 x      uvarint length + bytes: node ID, datacenter, raft addr, gRPC addr
type nodeMeta struct {
	ID              string
	Datacenter      string
	RaftAddr        string
	GRPCAddr        string
	HasState        bool
	Leaving         bool
	BootstrapExpect int
	// BootstrapHash identifies the configuration this node bootstrapped
	// with in this run (configHash); 0 if it did not. A peer that reports
	// state but this hash equal to the configuration another node is about
	// to propose bootstrapped the very same configuration, which is safe to
	// propose again (see maybeBootstrap).
	BootstrapHash uint64
}

// encode returns the version-1 encoding of m.
func (m nodeMeta) encode() []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64+8+4*2+len(m.ID)+len(m.Datacenter)+len(m.RaftAddr)+len(m.GRPCAddr))
	var flags byte
	if m.HasState {
		flags |= metaFlagHasState
	}
	if m.Leaving {
		flags |= metaFlagLeaving
	}
	b = append(b, metaVersion, flags)
	b = binary.AppendUvarint(b, uint64(m.BootstrapExpect))
	b = binary.BigEndian.AppendUint64(b, m.BootstrapHash)
	for _, s := range []string{m.ID, m.Datacenter, m.RaftAddr, m.GRPCAddr} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeMeta parses an encoding produced by encode (of this or a newer
// compatible build). It copies everything it keeps, so b may be reused.
func decodeMeta(b []byte) (nodeMeta, error) {
	d := metaDecoder{b: b}
	version := d.byte()
	if d.err == nil && version != metaVersion {
		return nodeMeta{}, fmt.Errorf("decode node metadata: version %d, want %d: %w", version, metaVersion, errInvalidMeta)
	}
	flags := d.byte()
	expect := d.uvarint()
	var m nodeMeta
	m.HasState = flags&metaFlagHasState != 0
	m.Leaving = flags&metaFlagLeaving != 0
	m.BootstrapHash = d.uint64()
	m.ID = d.string()
	m.Datacenter = d.string()
	m.RaftAddr = d.string()
	m.GRPCAddr = d.string()
	if d.err != nil {
		return nodeMeta{}, fmt.Errorf("decode node metadata (%d bytes): %w", len(b), d.err)
	}
	if expect > metaMaxSize { // any sane value is tiny; this also keeps int conversion safe
		return nodeMeta{}, fmt.Errorf("decode node metadata: bootstrap_expect %d out of range: %w", expect, errInvalidMeta)
	}
	m.BootstrapExpect = int(expect)
	return m, nil
}

// metaDecoder reads fields in order; the first error sticks and later reads
// return zero values.
type metaDecoder struct {
	b   []byte
	err error
}

func (d *metaDecoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("truncated: %w", errInvalidMeta)
	}
}

func (d *metaDecoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *metaDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *metaDecoder) uint64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *metaDecoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n]) // copies
	d.b = d.b[n:]
	return s
}

// User messages (memberlist Delegate.NotifyMsg) start with a type byte.
const msgLeaveIntent byte = 1

// encodeLeaveIntent builds the message a leaving server sends to each live
// member: the type byte, then its gossip name.
func encodeLeaveIntent(name string) []byte {
	return append([]byte{msgLeaveIntent}, name...)
}

// decodeLeaveIntent returns the name in a leave intent (copied).
func decodeLeaveIntent(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != msgLeaveIntent {
		return "", false
	}
	return string(b[1:]), true
}
