// Package security_test attacks a real cluster (servertest: Raft on TCP,
// bbolt, memberlist and gRPC on loopback) the way the attacks recorded in
// issue 10 did, and checks that secure mode (mutual TLS, gossip
// encryption, identity checks) stops each one. docs/security.md lists
// which layer stops which attack.
package security_test
