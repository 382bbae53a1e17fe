// Package tlsutil builds the TLS configurations of chainstore's transports
// from a CA, a certificate and a key in PEM files, and creates those files.
//
// A Configurator loads the files once and hands out *tls.Config values for
// each transport: incoming gRPC (client certificates required when
// VerifyIncoming is set), incoming HTTPS, the Raft transport (both ways,
// mutual TLS with server certificates only) and outgoing server-to-server
// gRPC (mutual TLS, the peer must present a server certificate).
// Every config it returns reads the current certificate and CA pool on each
// handshake (GetConfigForClient, GetClientCertificate, VerifyConnection), so
// Reload takes effect for new connections without a restart; established
// connections keep the certificate they were set up with.
//
// Names: a server certificate carries the DNS names
// server.<datacenter>.chainstore (any server of the datacenter) and
// <node>.server.<datacenter>.chainstore (that node), plus localhost and
// 127.0.0.1; a client certificate carries client.<datacenter>.chainstore.
// Only a certificate naming server.<datacenter>.chainstore may speak Raft or
// act as a server to another server.
//
// The generation half (GenerateCA, GenerateCert, WritePEM) writes ECDSA
// P-256 keys and certificates; key files are written with mode 0600.
// docs/security.md describes the threat model these layers answer.
package tlsutil
