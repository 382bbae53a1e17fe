package fsm

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/chainstore/chainstore/chain"
)

// A direct decoder of raftlogv1.Upsert into chain types: every replica
// runs it once per write, so it skips the generated message types (one
// allocation per message, map and string, and a reflective walk to find
// unknown fields) and builds the chain.Entry straight from the wire.
//
// It accepts a subset of what proto.Unmarshal into the generated types
// accepts, and whatever it accepts it decodes to the entry that
// proto.Unmarshal + entryFromProto would give (FuzzUpsertWireDecoder
// checks both). It is stricter in three ways, all of which EncodeCommand
// never produces: an unknown field number anywhere is an error (a newer
// writer's field would otherwise be dropped here and applied elsewhere),
// a singular message field may occur only once (proto would merge), and
// the Entry oneof must hold exactly one kind.

// errWire is the cause of every wire-level decode error.
var errWire = errors.New("bad protobuf wire data")

// wireField is one decoded field: its number and type, and its value
// (u for varint and fixed types, b for length-delimited ones).
type wireField struct {
	num protowire.Number
	typ protowire.Type
	u   uint64
	b   []byte
}

// eachField calls fn for each field of the message in b, in wire order.
func (d *wireDec) eachField(b []byte, fn func(f wireField) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", errWire, protowire.ParseError(n))
		}
		b = b[n:]
		f := wireField{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.u = uint64(v)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			return fmt.Errorf("%w: field %d has wire type %d", errWire, num, typ)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %w", errWire, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func (f wireField) want(t protowire.Type) error {
	if f.typ != t {
		return fmt.Errorf("%w: field %d has wire type %d, want %d", errWire, f.num, f.typ, t)
	}
	return nil
}

func (f wireField) unknown(msg string) error {
	return fmt.Errorf("%w: unknown field %d in %s", errWire, f.num, msg)
}

// wireDec decodes one command body. Its strings are substrings of one
// copy of the body (arena), so decoding an entry allocates that copy once
// instead of once per string; the entry keeps the copy alive, which is
// about the size of the entry itself.
type wireDec struct {
	arena   string
	baseCap int // cap of the body slice that arena copies
	// mapHint sizes the next Meta map (set by the entry decoders from a
	// count of its entries; 0 elsewhere).
	mapHint int
}

// countField counts the fields numbered num in the message b (0 if b is
// malformed; the decode that follows reports that).
func countField(b []byte, num protowire.Number) int {
	n := 0
	for len(b) > 0 {
		got, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return 0
		}
		b = b[k:]
		if k = protowire.ConsumeFieldValue(got, typ, b); k < 0 {
			return 0
		}
		b = b[k:]
		if got == num {
			n++
		}
	}
	return n
}

func newWireDec(body []byte) *wireDec {
	return &wireDec{arena: string(body), baseCap: cap(body)}
}

// str returns a string field's value as a substring of the arena. f.b is
// a subslice of the body (protowire.ConsumeBytes reslices without
// capping), so its offset is baseCap - cap(f.b); the bytes there are
// compared (no allocation), and any mismatch falls back to a copy.
func (d *wireDec) str(f wireField) (string, error) {
	if err := f.want(protowire.BytesType); err != nil {
		return "", err
	}
	if !utf8.Valid(f.b) {
		return "", fmt.Errorf("%w: field %d is not valid UTF-8", errWire, f.num)
	}
	if len(f.b) == 0 {
		return "", nil
	}
	off := d.baseCap - cap(f.b)
	if off < 0 || off+len(f.b) > len(d.arena) || d.arena[off:off+len(f.b)] != string(f.b) {
		return string(f.b), nil
	}
	return d.arena[off : off+len(f.b)], nil
}

func (f wireField) boolean() (bool, error) {
	err := f.want(protowire.VarintType)
	return f.u != 0, err
}

func (f wireField) uint64v() (uint64, error) {
	return f.u, f.want(protowire.VarintType)
}

func (f wireField) int64v() (int64, error) {
	return int64(f.u), f.want(protowire.VarintType)
}

func (f wireField) uint32v() (uint32, error) {
	return uint32(f.u), f.want(protowire.VarintType)
}

func (f wireField) float32v() (float32, error) {
	return math.Float32frombits(uint32(f.u)), f.want(protowire.Fixed32Type)
}

// msg returns the body of a singular message field, refusing a second
// occurrence (seen tracks it).
func (f wireField) msg(seen *bool) ([]byte, error) {
	if err := f.want(protowire.BytesType); err != nil {
		return nil, err
	}
	if *seen {
		return nil, fmt.Errorf("%w: message field %d repeated", errWire, f.num)
	}
	*seen = true
	return f.b, nil
}

// appendStr decodes one element of a repeated string field.
func (d *wireDec) appendStr(dst []string, f wireField) ([]string, error) {
	s, err := d.str(f)
	if err != nil {
		return dst, err
	}
	return append(dst, s), nil
}

// appendUint32s decodes a repeated uint32 field, packed or not.
func appendUint32s(dst []uint32, f wireField) ([]uint32, error) {
	if f.typ == protowire.VarintType {
		return append(dst, uint32(f.u)), nil
	}
	if err := f.want(protowire.BytesType); err != nil {
		return dst, err
	}
	for b := f.b; len(b) > 0; {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return dst, fmt.Errorf("%w: packed field %d: %w", errWire, f.num, protowire.ParseError(n))
		}
		dst = append(dst, uint32(v))
		b = b[n:]
	}
	return dst, nil
}

// mapEntry decodes a map<string, V> entry: its key and the raw value
// field (hasVal false if absent).
func (d *wireDec) mapEntry(f wireField) (key string, val wireField, hasVal bool, err error) {
	if err := f.want(protowire.BytesType); err != nil {
		return "", val, false, err
	}
	var seenKey bool
	err = d.eachField(f.b, func(e wireField) error {
		switch e.num {
		case 1:
			if seenKey {
				return fmt.Errorf("%w: map key repeated", errWire)
			}
			seenKey = true
			var err error
			key, err = d.str(e)
			return err
		case 2:
			if hasVal {
				return fmt.Errorf("%w: map value repeated", errWire)
			}
			val, hasVal = e, true
			return nil
		}
		return e.unknown("map entry")
	})
	return key, val, hasVal, err
}

// putMeta decodes an entry's Meta map entry f into *m, sizing the map
// for all the Meta entries of the entry message b when it creates it.
func (d *wireDec) putMeta(m *map[string]string, b []byte, f wireField) error {
	if *m == nil {
		d.mapHint = countField(b, f.num)
		defer func() { d.mapHint = 0 }()
	}
	return d.putStringMap(m, f)
}

// putStringMap decodes a map<string, string> entry into *m.
func (d *wireDec) putStringMap(m *map[string]string, f wireField) error {
	k, v, hasVal, err := d.mapEntry(f)
	if err != nil {
		return err
	}
	var s string
	if hasVal {
		if s, err = d.str(v); err != nil {
			return err
		}
	}
	if *m == nil {
		*m = make(map[string]string, d.mapHint)
	}
	(*m)[k] = s
	return nil
}

// decodeUpsertWire decodes a raftlogv1.Upsert.
func decodeUpsertWire(b []byte) (cas uint64, e chain.Entry, err error) {
	d := newWireDec(b)
	var seen bool
	err = d.eachField(b, func(f wireField) error {
		switch f.num {
		case 1:
			var err error
			cas, err = f.uint64v()
			return err
		case 2:
			body, err := f.msg(&seen)
			if err != nil {
				return err
			}
			e, err = d.decodeEntryWire(body)
			return err
		}
		return f.unknown("Upsert")
	})
	return cas, e, err
}

// decodeEntryWire decodes a raftlogv1.Entry.
func (d *wireDec) decodeEntryWire(b []byte) (chain.Entry, error) {
	var e chain.Entry
	err := d.eachField(b, func(f wireField) error {
		if f.num < 1 || f.num > 5 {
			return f.unknown("Entry")
		}
		if e != nil {
			return fmt.Errorf("%w: Entry holds more than one kind", errWire)
		}
		if err := f.want(protowire.BytesType); err != nil {
			return err
		}
		var err error
		switch f.num {
		case 1:
			e, err = d.decodeServiceDefaultsWire(f.b)
		case 2:
			e, err = d.decodeProxyDefaultsWire(f.b)
		case 3:
			e, err = d.decodeRouterWire(f.b)
		case 4:
			e, err = d.decodeSplitterWire(f.b)
		case 5:
			e, err = d.decodeResolverWire(f.b)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("%w: Entry without a kind", errWire)
	}
	return e, nil
}

func (d *wireDec) decodeMeshGatewayWire(b []byte, dst *chain.MeshGatewayConfig) error {
	return d.eachField(b, func(f wireField) error {
		if f.num == 1 {
			var err error
			dst.Mode, err = d.str(f)
			return err
		}
		return f.unknown("MeshGatewayConfig")
	})
}

func (d *wireDec) decodeExposeWire(b []byte, dst *chain.ExposeConfig) error {
	return d.eachField(b, func(f wireField) error {
		var err error
		switch f.num {
		case 1:
			dst.Checks, err = f.boolean()
		case 2:
			if err = f.want(protowire.BytesType); err != nil {
				return err
			}
			var p chain.ExposePath
			err = d.eachField(f.b, func(f wireField) error {
				var err error
				var n int64
				switch f.num {
				case 1:
					p.Path, err = d.str(f)
				case 2:
					n, err = f.int64v()
					p.LocalPathPort = int(n)
				case 3:
					n, err = f.int64v()
					p.ListenerPort = int(n)
				case 4:
					p.Protocol, err = d.str(f)
				default:
					err = f.unknown("ExposePath")
				}
				return err
			})
			dst.Paths = append(dst.Paths, p)
		default:
			err = f.unknown("ExposeConfig")
		}
		return err
	})
}

func (d *wireDec) decodeServiceDefaultsWire(b []byte) (*chain.ServiceConfigEntry, error) {
	e := &chain.ServiceConfigEntry{Kind: chain.KindServiceDefaults}
	var seenMG, seenExpose bool
	err := d.eachField(b, func(f wireField) error {
		var err error
		var body []byte
		switch f.num {
		case 1:
			e.Name, err = d.str(f)
		case 2:
			e.Protocol, err = d.str(f)
		case 3:
			if body, err = f.msg(&seenMG); err == nil {
				err = d.decodeMeshGatewayWire(body, &e.MeshGateway)
			}
		case 4:
			e.ExternalSNI, err = d.str(f)
		case 5:
			if body, err = f.msg(&seenExpose); err == nil {
				err = d.decodeExposeWire(body, &e.Expose)
			}
		case 6:
			err = d.putMeta(&e.Meta, b, f)
		default:
			err = f.unknown("ServiceDefaults")
		}
		return err
	})
	return e, err
}

func (d *wireDec) decodeProxyDefaultsWire(b []byte) (*chain.ProxyConfigEntry, error) {
	e := &chain.ProxyConfigEntry{Kind: chain.KindProxyDefaults}
	var seenMG, seenExpose bool
	var cfg []byte
	err := d.eachField(b, func(f wireField) error {
		var err error
		var body []byte
		switch f.num {
		case 1:
			e.Name, err = d.str(f)
		case 2:
			if err = f.want(protowire.BytesType); err == nil {
				cfg = f.b
			}
		case 3:
			if body, err = f.msg(&seenMG); err == nil {
				err = d.decodeMeshGatewayWire(body, &e.MeshGateway)
			}
		case 4:
			if body, err = f.msg(&seenExpose); err == nil {
				err = d.decodeExposeWire(body, &e.Expose)
			}
		case 5:
			err = d.putMeta(&e.Meta, b, f)
		default:
			err = f.unknown("ProxyDefaults")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if e.Config, err = chain.DecodeProxyConfig(cfg); err != nil {
		return nil, fmt.Errorf("proxy-defaults Config: %w", err)
	}
	return e, nil
}

func (d *wireDec) decodeHeadersWire(b []byte) (*chain.HTTPHeaderModifiers, error) {
	h := &chain.HTTPHeaderModifiers{}
	err := d.eachField(b, func(f wireField) error {
		var err error
		switch f.num {
		case 1:
			err = d.putStringMap(&h.Add, f)
		case 2:
			err = d.putStringMap(&h.Set, f)
		case 3:
			h.Remove, err = d.appendStr(h.Remove, f)
		default:
			err = f.unknown("HTTPHeaderModifiers")
		}
		return err
	})
	return h, err
}

func (d *wireDec) decodeRouterWire(b []byte) (*chain.ServiceRouterConfigEntry, error) {
	e := &chain.ServiceRouterConfigEntry{Kind: chain.KindServiceRouter}
	err := d.eachField(b, func(f wireField) error {
		var err error
		switch f.num {
		case 1:
			e.Name, err = d.str(f)
		case 2:
			if err = f.want(protowire.BytesType); err != nil {
				return err
			}
			var r chain.ServiceRoute
			r, err = d.decodeRouteWire(f.b)
			e.Routes = append(e.Routes, r)
		case 3:
			err = d.putMeta(&e.Meta, b, f)
		default:
			err = f.unknown("ServiceRouter")
		}
		return err
	})
	return e, err
}

func (d *wireDec) decodeRouteWire(b []byte) (chain.ServiceRoute, error) {
	var r chain.ServiceRoute
	var seenMatch, seenDest bool
	err := d.eachField(b, func(f wireField) error {
		var err error
		var body []byte
		switch f.num {
		case 1:
			if body, err = f.msg(&seenMatch); err == nil {
				r.Match, err = d.decodeMatchWire(body)
			}
		case 2:
			if body, err = f.msg(&seenDest); err == nil {
				r.Destination, err = d.decodeDestinationWire(body)
			}
		default:
			err = f.unknown("ServiceRoute")
		}
		return err
	})
	return r, err
}

func (d *wireDec) decodeMatchWire(b []byte) (*chain.ServiceRouteMatch, error) {
	m := &chain.ServiceRouteMatch{}
	var seen bool
	err := d.eachField(b, func(f wireField) error {
		if f.num != 1 {
			return f.unknown("ServiceRouteMatch")
		}
		body, err := f.msg(&seen)
		if err == nil {
			m.HTTP, err = d.decodeHTTPMatchWire(body)
		}
		return err
	})
	return m, err
}

func (d *wireDec) decodeHTTPMatchWire(b []byte) (*chain.ServiceRouteHTTPMatch, error) {
	h := &chain.ServiceRouteHTTPMatch{}
	err := d.eachField(b, func(f wireField) error {
		var err error
		switch f.num {
		case 1:
			h.PathExact, err = d.str(f)
		case 2:
			h.PathPrefix, err = d.str(f)
		case 3:
			h.PathRegex, err = d.str(f)
		case 4:
			if err = f.want(protowire.BytesType); err != nil {
				return err
			}
			var x chain.ServiceRouteHTTPMatchHeader
			err = d.eachField(f.b, func(f wireField) error {
				var err error
				switch f.num {
				case 1:
					x.Name, err = d.str(f)
				case 2:
					x.Present, err = f.boolean()
				case 3:
					x.Exact, err = d.str(f)
				case 4:
					x.Prefix, err = d.str(f)
				case 5:
					x.Suffix, err = d.str(f)
				case 6:
					x.Regex, err = d.str(f)
				case 7:
					x.Invert, err = f.boolean()
				default:
					err = f.unknown("ServiceRouteHTTPMatchHeader")
				}
				return err
			})
			h.Header = append(h.Header, x)
		case 5:
			if err = f.want(protowire.BytesType); err != nil {
				return err
			}
			var x chain.ServiceRouteHTTPMatchQueryParam
			err = d.eachField(f.b, func(f wireField) error {
				var err error
				switch f.num {
				case 1:
					x.Name, err = d.str(f)
				case 2:
					x.Present, err = f.boolean()
				case 3:
					x.Exact, err = d.str(f)
				case 4:
					x.Regex, err = d.str(f)
				default:
					err = f.unknown("ServiceRouteHTTPMatchQueryParam")
				}
				return err
			})
			h.QueryParam = append(h.QueryParam, x)
		case 6:
			h.Methods, err = d.appendStr(h.Methods, f)
		default:
			err = f.unknown("ServiceRouteHTTPMatch")
		}
		return err
	})
	return h, err
}

func (d *wireDec) decodeDestinationWire(b []byte) (*chain.ServiceRouteDestination, error) {
	dst := &chain.ServiceRouteDestination{}
	var seenReq, seenResp bool
	err := d.eachField(b, func(f wireField) error {
		var err error
		var n int64
		var body []byte
		switch f.num {
		case 1:
			dst.Service, err = d.str(f)
		case 2:
			dst.ServiceSubset, err = d.str(f)
		case 3:
			dst.Namespace, err = d.str(f)
		case 4:
			dst.PrefixRewrite, err = d.str(f)
		case 5:
			n, err = f.int64v()
			dst.RequestTimeout = chain.Duration(n)
		case 6:
			n, err = f.int64v()
			dst.IdleTimeout = chain.Duration(n)
		case 7:
			dst.NumRetries, err = f.uint32v()
		case 8:
			dst.RetryOnConnectFailure, err = f.boolean()
		case 9:
			dst.RetryOn, err = d.appendStr(dst.RetryOn, f)
		case 10:
			dst.RetryOnStatusCodes, err = appendUint32s(dst.RetryOnStatusCodes, f)
		case 11:
			if body, err = f.msg(&seenReq); err == nil {
				dst.RequestHeaders, err = d.decodeHeadersWire(body)
			}
		case 12:
			if body, err = f.msg(&seenResp); err == nil {
				dst.ResponseHeaders, err = d.decodeHeadersWire(body)
			}
		default:
			err = f.unknown("ServiceRouteDestination")
		}
		return err
	})
	return dst, err
}

func (d *wireDec) decodeSplitterWire(b []byte) (*chain.ServiceSplitterConfigEntry, error) {
	e := &chain.ServiceSplitterConfigEntry{Kind: chain.KindServiceSplitter}
	err := d.eachField(b, func(f wireField) error {
		var err error
		switch f.num {
		case 1:
			e.Name, err = d.str(f)
		case 2:
			if err = f.want(protowire.BytesType); err != nil {
				return err
			}
			var s chain.ServiceSplit
			var seenReq, seenResp bool
			err = d.eachField(f.b, func(f wireField) error {
				var err error
				var body []byte
				switch f.num {
				case 1:
					s.Weight, err = f.float32v()
				case 2:
					s.Service, err = d.str(f)
				case 3:
					s.ServiceSubset, err = d.str(f)
				case 4:
					s.Namespace, err = d.str(f)
				case 5:
					if body, err = f.msg(&seenReq); err == nil {
						s.RequestHeaders, err = d.decodeHeadersWire(body)
					}
				case 6:
					if body, err = f.msg(&seenResp); err == nil {
						s.ResponseHeaders, err = d.decodeHeadersWire(body)
					}
				default:
					err = f.unknown("ServiceSplit")
				}
				return err
			})
			e.Splits = append(e.Splits, s)
		case 3:
			err = d.putMeta(&e.Meta, b, f)
		default:
			err = f.unknown("ServiceSplitter")
		}
		return err
	})
	return e, err
}

func (d *wireDec) decodeResolverWire(b []byte) (*chain.ServiceResolverConfigEntry, error) {
	e := &chain.ServiceResolverConfigEntry{Kind: chain.KindServiceResolver}
	var seenRedirect, seenLB bool
	err := d.eachField(b, func(f wireField) error {
		var err error
		var n int64
		var body []byte
		switch f.num {
		case 1:
			e.Name, err = d.str(f)
		case 2:
			e.DefaultSubset, err = d.str(f)
		case 3:
			err = d.putSubsetWire(e, f)
		case 4:
			if body, err = f.msg(&seenRedirect); err == nil {
				e.Redirect, err = d.decodeRedirectWire(body)
			}
		case 5:
			err = d.putFailoverWire(e, f)
		case 6:
			n, err = f.int64v()
			e.ConnectTimeout = chain.Duration(n)
		case 7:
			n, err = f.int64v()
			e.RequestTimeout = chain.Duration(n)
		case 8:
			if body, err = f.msg(&seenLB); err == nil {
				e.LoadBalancer, err = d.decodeLoadBalancerWire(body)
			}
		case 9:
			err = d.putMeta(&e.Meta, b, f)
		default:
			err = f.unknown("ServiceResolver")
		}
		return err
	})
	return e, err
}

func (d *wireDec) putSubsetWire(e *chain.ServiceResolverConfigEntry, f wireField) error {
	k, v, hasVal, err := d.mapEntry(f)
	if err != nil {
		return err
	}
	var s chain.ServiceResolverSubset
	if hasVal {
		if err := v.want(protowire.BytesType); err != nil {
			return err
		}
		err = d.eachField(v.b, func(f wireField) error {
			var err error
			switch f.num {
			case 1:
				s.Filter, err = d.str(f)
			case 2:
				s.OnlyPassing, err = f.boolean()
			default:
				err = f.unknown("ServiceResolverSubset")
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if e.Subsets == nil {
		e.Subsets = make(map[string]chain.ServiceResolverSubset)
	}
	e.Subsets[k] = s
	return nil
}

func (d *wireDec) decodeRedirectWire(b []byte) (*chain.ServiceResolverRedirect, error) {
	r := &chain.ServiceResolverRedirect{}
	err := d.eachField(b, func(f wireField) error {
		var err error
		switch f.num {
		case 1:
			r.Service, err = d.str(f)
		case 2:
			r.ServiceSubset, err = d.str(f)
		case 3:
			r.Namespace, err = d.str(f)
		case 4:
			r.Datacenter, err = d.str(f)
		default:
			err = f.unknown("ServiceResolverRedirect")
		}
		return err
	})
	return r, err
}

func (d *wireDec) putFailoverWire(e *chain.ServiceResolverConfigEntry, f wireField) error {
	k, v, hasVal, err := d.mapEntry(f)
	if err != nil {
		return err
	}
	var fo chain.ServiceResolverFailover
	if hasVal {
		if err := v.want(protowire.BytesType); err != nil {
			return err
		}
		err = d.eachField(v.b, func(f wireField) error {
			var err error
			switch f.num {
			case 1:
				fo.Service, err = d.str(f)
			case 2:
				fo.ServiceSubset, err = d.str(f)
			case 3:
				fo.Namespace, err = d.str(f)
			case 4:
				fo.Datacenters, err = d.appendStr(fo.Datacenters, f)
			case 5:
				if err = f.want(protowire.BytesType); err != nil {
					return err
				}
				var t chain.ServiceResolverFailoverTarget
				err = d.eachField(f.b, func(f wireField) error {
					var err error
					switch f.num {
					case 1:
						t.Service, err = d.str(f)
					case 2:
						t.ServiceSubset, err = d.str(f)
					case 3:
						t.Namespace, err = d.str(f)
					case 4:
						t.Datacenter, err = d.str(f)
					default:
						err = f.unknown("ServiceResolverFailoverTarget")
					}
					return err
				})
				fo.Targets = append(fo.Targets, t)
			default:
				err = f.unknown("ServiceResolverFailover")
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if e.Failover == nil {
		e.Failover = make(map[string]chain.ServiceResolverFailover)
	}
	e.Failover[k] = fo
	return nil
}

func (d *wireDec) decodeLoadBalancerWire(b []byte) (*chain.LoadBalancer, error) {
	lb := &chain.LoadBalancer{}
	var seenRing, seenLeast bool
	err := d.eachField(b, func(f wireField) error {
		var err error
		var body []byte
		switch f.num {
		case 1:
			lb.Policy, err = d.str(f)
		case 2:
			if body, err = f.msg(&seenRing); err != nil {
				return err
			}
			c := &chain.RingHashConfig{}
			err = d.eachField(body, func(f wireField) error {
				var err error
				switch f.num {
				case 1:
					c.MinimumRingSize, err = f.uint64v()
				case 2:
					c.MaximumRingSize, err = f.uint64v()
				default:
					err = f.unknown("RingHashConfig")
				}
				return err
			})
			lb.RingHashConfig = c
		case 3:
			if body, err = f.msg(&seenLeast); err != nil {
				return err
			}
			c := &chain.LeastRequestConfig{}
			err = d.eachField(body, func(f wireField) error {
				if f.num != 1 {
					return f.unknown("LeastRequestConfig")
				}
				var err error
				c.ChoiceCount, err = f.uint32v()
				return err
			})
			lb.LeastRequestConfig = c
		case 4:
			if err = f.want(protowire.BytesType); err != nil {
				return err
			}
			var h chain.HashPolicy
			err = d.decodeHashPolicyWire(f.b, &h)
			lb.HashPolicies = append(lb.HashPolicies, h)
		default:
			err = f.unknown("LoadBalancer")
		}
		return err
	})
	return lb, err
}

func (d *wireDec) decodeHashPolicyWire(b []byte, h *chain.HashPolicy) error {
	var seenCookie bool
	return d.eachField(b, func(f wireField) error {
		var err error
		var body []byte
		switch f.num {
		case 1:
			h.Field, err = d.str(f)
		case 2:
			h.FieldValue, err = d.str(f)
		case 3:
			if body, err = f.msg(&seenCookie); err != nil {
				return err
			}
			c := &chain.CookieConfig{}
			err = d.eachField(body, func(f wireField) error {
				var err error
				var n int64
				switch f.num {
				case 1:
					c.Session, err = f.boolean()
				case 2:
					n, err = f.int64v()
					c.TTL = chain.Duration(n)
				case 3:
					c.Path, err = d.str(f)
				default:
					err = f.unknown("CookieConfig")
				}
				return err
			})
			h.CookieConfig = c
		case 4:
			h.SourceIP, err = f.boolean()
		case 5:
			h.Terminal, err = f.boolean()
		default:
			err = f.unknown("HashPolicy")
		}
		return err
	})
}
