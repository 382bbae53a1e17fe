// Package api is the Go client library of chainstore's gRPC API: a Client
// for the entries and operator services, a ChainWatchClient that keeps a
// set of compiled discovery chains current across server failures, and
// helpers that read the ErrorInfo details of the errors servers return.
//
// It imports only the generated protobuf code (proto/chainstore/v1), gRPC
// and a logger, never the server packages, so a client binary links no
// Raft, bbolt, memberlist or memdb code.
//
// # Goroutines
//
// The package starts none of its own: grpc-go owns its connection
// goroutines (stopped by Client.Close, or when a watch session ends), and
// ChainWatchClient.Run receives on the caller's goroutine and calls the
// handler there.
package api
