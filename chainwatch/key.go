package chainwatch

import (
	"fmt"
	"strings"
	"time"

	"github.com/chainstore/chainstore/chain"
)

// Size limits of the fields of a ChainKey.
const (
	maxServiceLen    = 256
	maxDatacenterLen = 256
	maxProtocolLen   = 64
	maxConnectTO     = 24 * time.Hour
)

// ChainKey identifies one compiled chain on a server: a service compiled
// for a datacenter with optional overrides (docs/discovery-chain.md,
// Overrides). It is comparable
// and used as a map key; build it with the fields and let the hub
// normalize it (empty Datacenter: the server's; protocol lower-cased).
type ChainKey struct {
	Service                 string
	Datacenter              string
	OverrideProtocol        string
	OverrideConnectTimeout  time.Duration
	OverrideMeshGatewayMode string
}

// String renders the key for logs, e.g. "web@dc1" or
// "web@dc1[protocol=tcp,connect_timeout=2s,mesh_gateway=local]".
func (k ChainKey) String() string {
	s := k.Service + "@" + k.Datacenter
	var o []string
	if k.OverrideProtocol != "" {
		o = append(o, "protocol="+k.OverrideProtocol)
	}
	if k.OverrideConnectTimeout != 0 {
		o = append(o, "connect_timeout="+k.OverrideConnectTimeout.String())
	}
	if k.OverrideMeshGatewayMode != "" {
		o = append(o, "mesh_gateway="+k.OverrideMeshGatewayMode)
	}
	if len(o) > 0 {
		s += "[" + strings.Join(o, ",") + "]"
	}
	return s
}

// normalizeKey fills defaults and checks limits. Errors wrap ErrInvalidChain.
func normalizeKey(k ChainKey, dc string) (ChainKey, error) {
	if k.Datacenter == "" {
		k.Datacenter = dc
	}
	k.OverrideProtocol = strings.ToLower(k.OverrideProtocol)
	switch {
	case k.Service == "":
		return k, fmt.Errorf("%w: missing service name", ErrInvalidChain)
	case len(k.Service) > maxServiceLen:
		return k, fmt.Errorf("%w: service name longer than %d bytes", ErrInvalidChain, maxServiceLen)
	case len(k.Datacenter) > maxDatacenterLen:
		return k, fmt.Errorf("%w: datacenter longer than %d bytes", ErrInvalidChain, maxDatacenterLen)
	case len(k.OverrideProtocol) > maxProtocolLen:
		return k, fmt.Errorf("%w: override protocol longer than %d bytes", ErrInvalidChain, maxProtocolLen)
	case k.OverrideConnectTimeout < 0 || k.OverrideConnectTimeout > maxConnectTO:
		return k, fmt.Errorf("%w: override connect timeout %s out of range [0, %s]", ErrInvalidChain, k.OverrideConnectTimeout, maxConnectTO)
	}
	switch k.OverrideMeshGatewayMode {
	case "", "none", "local", "remote":
	default:
		return k, fmt.Errorf("%w: Invalid OverrideMeshGateway.Mode parameter %q", ErrInvalidChain, k.OverrideMeshGatewayMode)
	}
	return k, nil
}

// compileRequest builds the compiler input for key against entries.
func (c Config) compileRequest(key ChainKey, entries chain.EntryLookup) chain.CompileRequest {
	return chain.CompileRequest{
		ServiceName:            key.Service,
		EvaluateInNamespace:    c.Namespace,
		EvaluateInDatacenter:   key.Datacenter,
		EvaluateInTrustDomain:  c.TrustDomain,
		UseInDatacenter:        c.Datacenter,
		OverrideProtocol:       key.OverrideProtocol,
		OverrideConnectTimeout: key.OverrideConnectTimeout,
		OverrideMeshGateway:    chain.MeshGatewayConfig{Mode: key.OverrideMeshGatewayMode},
		Entries:                entries,
	}
}
