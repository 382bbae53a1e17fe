package chainwatch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// Version is one published version of a chain. It is immutable and shared
// by every watcher of the chain: its bytes are encoded once.
type Version struct {
	// Index is the highest ModifyIndex (or tombstone index) of the keys the
	// compile read, found or not. Within one epoch it never decreases.
	Index uint64
	// Hash is a digest of Chain (or of Err); equal hashes mean the same
	// chain, on any server.
	Hash string
	// Chain is the compiled chain's JSON (chain.CompiledChain), nil when
	// Err is set.
	Chain []byte
	// Err is the compile error text, or "".
	Err string
	// Epoch counts snapshot restores on this hub; a version of a newer
	// epoch than a watcher has seen tells it to reset.
	Epoch uint64

	seq        uint64                     // publishes of the chain before this one (counts skipped versions)
	superseded chan struct{}              // closed when a newer version replaced this one
	pb         *chainstorev1.ChainVersion // built once, shared by every stream; read-only
	services   *targetServices            // shared by copies (withIndex)
}

// targetServices is the lazily computed list of Version.Services.
type targetServices struct {
	once  sync.Once
	names []string
}

// Services returns the services the chain's targets reach (sorted,
// deduplicated; the chain's own service included), computed once per
// version from Chain. A version with Err has none. ACL checks use it to
// refuse a chain that reaches a service the caller may not read.
func (v *Version) Services() []string {
	v.services.once.Do(func() {
		if len(v.Chain) == 0 {
			return
		}
		var c struct {
			ServiceName string
			Targets     map[string]struct{ Service string }
		}
		if err := json.Unmarshal(v.Chain, &c); err != nil {
			// Chain is this package's own encoding; keep the chain's name
			// so a check still covers it.
			v.services.names = []string{c.ServiceName}
			return
		}
		names := []string{c.ServiceName}
		for _, t := range c.Targets {
			names = append(names, t.Service)
		}
		slices.Sort(names)
		v.services.names = slices.Compact(names)
	})
	return v.services.names
}

func newVersion(index uint64, hash string, body []byte, errText string, epoch uint64) *Version {
	v := &Version{
		Index:      index,
		Hash:       hash,
		Chain:      body,
		Err:        errText,
		Epoch:      epoch,
		superseded: make(chan struct{}),
		services:   &targetServices{},
	}
	v.pb = &chainstorev1.ChainVersion{Index: v.Index, Hash: v.Hash, Chain: v.Chain, Error: v.Err}
	return v
}

// withIndex returns a copy of v labelled with a higher index. The copy
// shares v's superseded channel, so whoever waits on either one is woken
// by the next version with different content.
func (v *Version) withIndex(index uint64) *Version {
	c := *v
	c.Index = index
	c.pb = &chainstorev1.ChainVersion{Index: index, Hash: v.Hash, Chain: v.Chain, Error: v.Err}
	return &c
}

// Superseded is closed when a newer version of the chain is published.
func (v *Version) Superseded() <-chan struct{} { return v.superseded }

// Proto returns the version as a protobuf message. It is shared by every
// caller and must not be modified.
func (v *Version) Proto() *chainstorev1.ChainVersion { return v.pb }

// hashOf digests a compiled chain or an error text: 32 hex characters of
// SHA-256, domain-separated so an error never hashes like a chain.
func hashOf(body []byte, errText string) string {
	h := sha256.New()
	if errText != "" {
		h.Write([]byte("error\x00"))
		h.Write([]byte(errText))
	} else {
		h.Write([]byte("chain\x00"))
		h.Write(body)
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
