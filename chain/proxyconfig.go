package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// EncodeProxyConfig returns the free-form Config of a proxy-defaults entry
// as EncodeEntry writes it inside the entry's canonical JSON (map keys
// sorted, no HTML escaping), or nil when cfg is empty (EncodeEntry omits
// it then). The FSM's binary log format carries Config this way.
func EncodeProxyConfig(cfg map[string]any) ([]byte, error) {
	if len(cfg) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("encode proxy-defaults Config: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodeProxyConfig decodes what EncodeProxyConfig wrote into the value
// DecodeCanonical gives the Config field of a proxy-defaults entry:
// integral numbers become int, others float64, strings valid UTF-8. Empty
// input is a nil map. Errors are *DecodeError.
func DecodeProxyConfig(data []byte) (map[string]any, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var cfg map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&cfg); err != nil {
		return nil, &DecodeError{Msg: fmt.Sprintf("failed to decode proxy-defaults Config: %v", err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &DecodeError{Msg: "failed to decode proxy-defaults Config: trailing data"}
	}
	if cfg == nil {
		return nil, nil
	}
	g, err := genericValue(cfg, 0)
	if err != nil {
		return nil, err
	}
	return g.(map[string]any), nil
}
