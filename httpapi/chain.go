package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// discoveryChain is GET and POST /v1/discovery-chain/:service: the
// compiled chain as {"Chain": ...}, compiled for ?compile-dc= (default:
// this server's datacenter), with the overrides of a POST body. It blocks
// with ?index=&wait= like the entry reads; a chain that does not compile
// is a 500 with the compiler's message (Consul).
func (s *Server) discoveryChain(w http.ResponseWriter, r *http.Request) error {
	service := r.PathValue("service")
	if service == "" {
		return badRequest("Missing chain name")
	}
	opts, err := s.queryOptions(r)
	if err != nil {
		return err
	}
	ref := &chainstorev1.ChainRef{Service: service, Datacenter: r.URL.Query().Get("compile-dc")}
	if ref.Datacenter == "" {
		ref.Datacenter = s.cfg.Datacenter
	}
	if r.Method == http.MethodPost {
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		if ref.Overrides, err = decodeOverrides(body); err != nil {
			return err
		}
	}
	resp, err := s.backend.GetChain(requestContext(r), &chainstorev1.GetChainRequest{Chain: ref, Options: opts})
	if err != nil {
		return err
	}
	setMeta(w, resp.GetMeta())
	return writeJSON(w, struct {
		Chain json.RawMessage
	}{Chain: resp.GetVersion().GetChain()})
}

// decodeOverrides reads a discovery-chain POST body: OverrideProtocol,
// OverrideConnectTimeout (a duration string or nanoseconds) and
// OverrideMeshGateway {Mode}, in CamelCase or snake_case, weakly typed as
// Consul reads them. Unknown keys are refused.
func decodeOverrides(body []byte) (*chainstorev1.ChainOverrides, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, badRequest("Request decoding failed: %v", err)
	}
	if dec.More() {
		return nil, badRequest("Request decoding failed: unexpected data after the JSON object")
	}
	o := &chainstorev1.ChainOverrides{}
	for k, v := range raw {
		switch normKey(k) {
		case "overrideprotocol":
			p, err := weakString(v)
			if err != nil {
				return nil, badRequest("Request decoding failed: %s: %v", k, err)
			}
			o.Protocol = p
		case "overrideconnecttimeout":
			d, err := weakDuration(v)
			if err != nil {
				return nil, badRequest("Request decoding failed: %s: %v", k, err)
			}
			if d != 0 {
				o.ConnectTimeout = durationpb.New(d)
			}
		case "overridemeshgateway":
			mode, err := meshGatewayMode(v)
			if err != nil {
				return nil, badRequest("Request decoding failed: %s: %v", k, err)
			}
			switch mode {
			case "", "none", "local", "remote":
			default:
				return nil, badRequest("Invalid OverrideMeshGateway.Mode parameter")
			}
			o.MeshGatewayMode = mode
		default:
			return nil, badRequest("Request decoding failed: unknown field %q (want OverrideProtocol, OverrideConnectTimeout or OverrideMeshGateway)", k)
		}
	}
	return o, nil
}

// normKey folds a CamelCase or snake_case key to one spelling.
func normKey(k string) string { return strings.ToLower(strings.ReplaceAll(k, "_", "")) }

// weakString converts a string, number or bool to a string.
func weakString(v any) (string, error) {
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	case json.Number:
		return t.String(), nil
	case bool:
		return strconv.FormatBool(t), nil
	}
	return "", fmt.Errorf("want a string, got %T", v)
}

// weakDuration reads a duration string ("7s") or a number of nanoseconds.
func weakDuration(v any) (time.Duration, error) {
	switch t := v.(type) {
	case nil:
		return 0, nil
	case string:
		if t == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(t)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", t)
		}
		if d < 0 {
			return 0, errors.New("must not be negative")
		}
		return d, nil
	case json.Number:
		f, err := t.Float64()
		if err != nil || f < 0 || f > math.MaxInt64 {
			return 0, fmt.Errorf("invalid duration %s", t)
		}
		return time.Duration(f), nil
	}
	return 0, fmt.Errorf("want a duration such as \"5s\" or nanoseconds, got %T", v)
}

// meshGatewayMode reads {"Mode": "..."}.
func meshGatewayMode(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", fmt.Errorf("want an object with Mode, got %T", v)
	}
	mode := ""
	for k, mv := range m {
		if normKey(k) != "mode" {
			return "", fmt.Errorf("unknown field %q (want Mode)", k)
		}
		s, err := weakString(mv)
		if err != nil {
			return "", fmt.Errorf("mode: %w", err)
		}
		mode = s
	}
	return mode, nil
}
