package fsm

import (
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/chainstore/chainstore/chain"
)

// A direct encoder of raftlogv1.Upsert from chain types, the mirror of
// entrywire.go: it writes exactly the bytes proto.MarshalOptions{
// Deterministic: true} writes for the generated message (fields in number
// order, zero scalars left out, map entries sorted by key, repeated
// scalars packed), without building that message first.
// TestUpsertWireEncoderMatchesGenerated checks the bytes.

// wireEnc appends fields to b. err records the first string that is not
// valid UTF-8 (protobuf strings must be; the entry decoders never produce
// one).
type wireEnc struct {
	b   []byte
	err error
}

func (w *wireEnc) str(num protowire.Number, s string) {
	if s == "" {
		return
	}
	if w.err == nil && !utf8.ValidString(s) {
		w.err = fmt.Errorf("field %d is not valid UTF-8", num)
	}
	w.b = protowire.AppendTag(w.b, num, protowire.BytesType)
	w.b = protowire.AppendString(w.b, s)
}

func (w *wireEnc) bytes(num protowire.Number, v []byte) {
	if len(v) == 0 {
		return
	}
	w.b = protowire.AppendTag(w.b, num, protowire.BytesType)
	w.b = protowire.AppendBytes(w.b, v)
}

func (w *wireEnc) varint(num protowire.Number, v uint64) {
	if v == 0 {
		return
	}
	w.b = protowire.AppendTag(w.b, num, protowire.VarintType)
	w.b = protowire.AppendVarint(w.b, v)
}

func (w *wireEnc) boolean(num protowire.Number, v bool) {
	if v {
		w.varint(num, 1)
	}
}

func (w *wireEnc) float32v(num protowire.Number, v float32) {
	bits := math.Float32bits(v)
	if bits == 0 { // -0 is written, as protobuf-go does
		return
	}
	w.b = protowire.AppendTag(w.b, num, protowire.Fixed32Type)
	w.b = protowire.AppendFixed32(w.b, bits)
}

// msg writes a message field whose body fn appends. The length goes
// before the body: one byte is reserved and the body moved if its length
// needs more.
func (w *wireEnc) msg(num protowire.Number, fn func()) {
	w.b = protowire.AppendTag(w.b, num, protowire.BytesType)
	start := len(w.b)
	w.b = append(w.b, 0)
	fn()
	n := len(w.b) - start - 1
	if sz := protowire.SizeVarint(uint64(n)); sz > 1 {
		w.b = slices.Grow(w.b, sz-1)[:len(w.b)+sz-1]
		copy(w.b[start+sz:], w.b[start+1:start+1+n])
	}
	protowire.AppendVarint(w.b[start:start], uint64(n))
}

func (w *wireEnc) strings(num protowire.Number, ss []string) {
	for _, s := range ss {
		// Repeated strings are written even when empty.
		if w.err == nil && !utf8.ValidString(s) {
			w.err = fmt.Errorf("field %d is not valid UTF-8", num)
		}
		w.b = protowire.AppendTag(w.b, num, protowire.BytesType)
		w.b = protowire.AppendString(w.b, s)
	}
}

func (w *wireEnc) packedUint32s(num protowire.Number, vs []uint32) {
	if len(vs) == 0 {
		return
	}
	n := 0
	for _, v := range vs {
		n += protowire.SizeVarint(uint64(v))
	}
	w.b = protowire.AppendTag(w.b, num, protowire.BytesType)
	w.b = protowire.AppendVarint(w.b, uint64(n))
	for _, v := range vs {
		w.b = protowire.AppendVarint(w.b, uint64(v))
	}
}

// sortedKeys returns m's keys in order, in one allocation.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// strAlways writes a string field even when it is empty, as protobuf-go
// writes the key and value of every map entry.
func (w *wireEnc) strAlways(num protowire.Number, s string) {
	if s == "" {
		w.b = protowire.AppendTag(w.b, num, protowire.BytesType)
		w.b = append(w.b, 0)
		return
	}
	w.str(num, s)
}

// stringMap writes a map<string, string> field, entries sorted by key.
func (w *wireEnc) stringMap(num protowire.Number, m map[string]string) {
	if len(m) == 0 {
		return
	}
	for _, k := range sortedKeys(m) {
		w.msg(num, func() {
			w.strAlways(1, k)
			w.strAlways(2, m[k])
		})
	}
}

// encodeUpsertWire appends the raftlogv1.Upsert of (cas, e) to b.
func encodeUpsertWire(b []byte, cas uint64, e chain.Entry) ([]byte, error) {
	w := &wireEnc{b: b}
	w.varint(1, cas)
	var err error
	w.msg(2, func() { err = w.entry(e) })
	if err != nil {
		return nil, err
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}

func (w *wireEnc) entry(e chain.Entry) error {
	switch t := e.(type) {
	case *chain.ServiceConfigEntry:
		w.msg(1, func() {
			w.str(1, t.Name)
			w.str(2, t.Protocol)
			w.meshGateway(3, t.MeshGateway)
			w.str(4, t.ExternalSNI)
			w.expose(5, t.Expose)
			w.stringMap(6, t.Meta)
		})
	case *chain.ProxyConfigEntry:
		cfg, err := chain.EncodeProxyConfig(t.Config)
		if err != nil {
			return err
		}
		w.msg(2, func() {
			w.str(1, t.Name)
			w.bytes(2, cfg)
			w.meshGateway(3, t.MeshGateway)
			w.expose(4, t.Expose)
			w.stringMap(5, t.Meta)
		})
	case *chain.ServiceRouterConfigEntry:
		w.msg(3, func() {
			w.str(1, t.Name)
			for i := range t.Routes {
				w.msg(2, func() { w.route(&t.Routes[i]) })
			}
			w.stringMap(3, t.Meta)
		})
	case *chain.ServiceSplitterConfigEntry:
		w.msg(4, func() {
			w.str(1, t.Name)
			for i := range t.Splits {
				s := &t.Splits[i]
				w.msg(2, func() {
					w.float32v(1, s.Weight)
					w.str(2, s.Service)
					w.str(3, s.ServiceSubset)
					w.str(4, s.Namespace)
					w.headers(5, s.RequestHeaders)
					w.headers(6, s.ResponseHeaders)
				})
			}
			w.stringMap(3, t.Meta)
		})
	case *chain.ServiceResolverConfigEntry:
		w.msg(5, func() { w.resolver(t) })
	default:
		return fmt.Errorf("entry of type %T: %w", e, ErrMalformedCommand)
	}
	return nil
}

func (w *wireEnc) meshGateway(num protowire.Number, m chain.MeshGatewayConfig) {
	if m.Mode != "" {
		w.msg(num, func() { w.str(1, m.Mode) })
	}
}

func (w *wireEnc) expose(num protowire.Number, x chain.ExposeConfig) {
	if !x.Checks && len(x.Paths) == 0 {
		return
	}
	w.msg(num, func() {
		w.boolean(1, x.Checks)
		for _, p := range x.Paths {
			w.msg(2, func() {
				w.str(1, p.Path)
				w.varint(2, uint64(int64(p.LocalPathPort)))
				w.varint(3, uint64(int64(p.ListenerPort)))
				w.str(4, p.Protocol)
			})
		}
	})
}

func (w *wireEnc) headers(num protowire.Number, h *chain.HTTPHeaderModifiers) {
	if h == nil {
		return
	}
	w.msg(num, func() {
		w.stringMap(1, h.Add)
		w.stringMap(2, h.Set)
		w.strings(3, h.Remove)
	})
}

func (w *wireEnc) route(r *chain.ServiceRoute) {
	if m := r.Match; m != nil {
		w.msg(1, func() {
			h := m.HTTP
			if h == nil {
				return
			}
			w.msg(1, func() {
				w.str(1, h.PathExact)
				w.str(2, h.PathPrefix)
				w.str(3, h.PathRegex)
				for _, x := range h.Header {
					w.msg(4, func() {
						w.str(1, x.Name)
						w.boolean(2, x.Present)
						w.str(3, x.Exact)
						w.str(4, x.Prefix)
						w.str(5, x.Suffix)
						w.str(6, x.Regex)
						w.boolean(7, x.Invert)
					})
				}
				for _, x := range h.QueryParam {
					w.msg(5, func() {
						w.str(1, x.Name)
						w.boolean(2, x.Present)
						w.str(3, x.Exact)
						w.str(4, x.Regex)
					})
				}
				w.strings(6, h.Methods)
			})
		})
	}
	if d := r.Destination; d != nil {
		w.msg(2, func() {
			w.str(1, d.Service)
			w.str(2, d.ServiceSubset)
			w.str(3, d.Namespace)
			w.str(4, d.PrefixRewrite)
			w.varint(5, uint64(d.RequestTimeout))
			w.varint(6, uint64(d.IdleTimeout))
			w.varint(7, uint64(d.NumRetries))
			w.boolean(8, d.RetryOnConnectFailure)
			w.strings(9, d.RetryOn)
			w.packedUint32s(10, d.RetryOnStatusCodes)
			w.headers(11, d.RequestHeaders)
			w.headers(12, d.ResponseHeaders)
		})
	}
}

func (w *wireEnc) resolver(t *chain.ServiceResolverConfigEntry) {
	w.str(1, t.Name)
	w.str(2, t.DefaultSubset)
	if len(t.Subsets) > 0 {
		for _, k := range sortedKeys(t.Subsets) {
			s := t.Subsets[k]
			w.msg(3, func() {
				w.strAlways(1, k)
				w.msg(2, func() {
					w.str(1, s.Filter)
					w.boolean(2, s.OnlyPassing)
				})
			})
		}
	}
	if r := t.Redirect; r != nil {
		w.msg(4, func() {
			w.str(1, r.Service)
			w.str(2, r.ServiceSubset)
			w.str(3, r.Namespace)
			w.str(4, r.Datacenter)
		})
	}
	if len(t.Failover) > 0 {
		for _, k := range sortedKeys(t.Failover) {
			f := t.Failover[k]
			w.msg(5, func() {
				w.strAlways(1, k)
				w.msg(2, func() {
					w.str(1, f.Service)
					w.str(2, f.ServiceSubset)
					w.str(3, f.Namespace)
					w.strings(4, f.Datacenters)
					for _, x := range f.Targets {
						w.msg(5, func() {
							w.str(1, x.Service)
							w.str(2, x.ServiceSubset)
							w.str(3, x.Namespace)
							w.str(4, x.Datacenter)
						})
					}
				})
			})
		}
	}
	w.varint(6, uint64(t.ConnectTimeout))
	w.varint(7, uint64(t.RequestTimeout))
	if lb := t.LoadBalancer; lb != nil {
		w.msg(8, func() {
			w.str(1, lb.Policy)
			if c := lb.RingHashConfig; c != nil {
				w.msg(2, func() {
					w.varint(1, c.MinimumRingSize)
					w.varint(2, c.MaximumRingSize)
				})
			}
			if c := lb.LeastRequestConfig; c != nil {
				w.msg(3, func() { w.varint(1, uint64(c.ChoiceCount)) })
			}
			for _, h := range lb.HashPolicies {
				w.msg(4, func() {
					w.str(1, h.Field)
					w.str(2, h.FieldValue)
					if c := h.CookieConfig; c != nil {
						w.msg(3, func() {
							w.boolean(1, c.Session)
							w.varint(2, uint64(c.TTL))
							w.str(3, c.Path)
						})
					}
					w.boolean(4, h.SourceIP)
					w.boolean(5, h.Terminal)
				})
			}
		})
	}
	w.stringMap(9, t.Meta)
}
