// Package chain holds chainstore's config-entry model and the discovery
// chain built from it. The rules, error texts and compile steps are
// documented in docs/discovery-chain.md; comments in this package cite its
// sections by heading (e.g. "docs/discovery-chain.md, Resolver step").
//
// The package is pure: no I/O, no goroutines, no clock and no global
// mutable state. Every function is deterministic in its inputs, which is
// what lets the FSM run validation and compilation on every replica and
// reach the same answer.
//
// # Pipeline
//
// An entry goes through four steps:
//
//  1. Decode. DecodeEntry reads one HCL or JSON document and DecodeMap a
//     generic map (docs/discovery-chain.md, Decoding): the Kind/kind key
//     picks the type; CamelCase and snake_case keys are matched
//     case-insensitively; HCL's
//     one-element block lists collapse to objects except where the field
//     really is a list; input is weakly typed ("5" for 5), durations are
//     "15s" or nanoseconds; every unknown key is reported as
//     `invalid config key "<key>"` in one *DecodeError. The proxy-defaults
//     Config map is kept verbatim. EncodeEntry writes the canonical JSON
//     form and DecodeCanonical is its fast strict inverse, used by the
//     FSM and snapshots.
//  2. Normalize (Entry.Normalize): canonicalize in place: force Kind,
//     lower-case service-defaults Protocol, upper-case route Methods, round
//     split weights to 0.01, name proxy-defaults "global".
//  3. Validate (Entry.Validate): check one entry on its own, in the exact
//     order and wording of docs/discovery-chain.md, Validation,
//     returning a *ValidationError. Prepare
//     runs Normalize then Validate. Subset filters are go-bexpr
//     expressions (ParseFilter, Filter.Match over a ServiceInstance).
//  4. Compile: Compile turns the entries reachable from one service into a
//     CompiledChain; ValidateWrite and AffectedChains use it to reject a
//     write that would break any chain (docs/discovery-chain.md, Compile
//     and Write-time validation), with *GraphError. A write that keeps
//     its key's graph input (the fields that can decide whether a chain
//     compiles) is accepted without compiling.
//
// Entry.References lists the services an entry points at; the store's link
// index and ACL checks use it.
//
// # Errors
//
// User-facing problems are typed: *DecodeError (step 1), *ValidationError
// (steps 2-3) and *GraphError (step 4); match them with errors.As. Their
// Msg fields are the exact user-facing texts (Consul's wording), as
// docs/discovery-chain.md quotes them.
package chain
