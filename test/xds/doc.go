// Package xds is the end-to-end test of chainstore's xDS server with real
// parts: an in-process chainstore server (internal/servertest) serving
// ADS on its gRPC address, real gRPC backends on loopback registered in
// the catalog through the API, and stock grpc-go clients using the xds
// resolver (xds:///<service>) that count which backend answered each RPC.
// It holds tests only.
package xds
