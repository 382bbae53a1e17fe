// Package rpc is the server side of chainstore's gRPC API: the
// config-entry service (EntriesServer), the chain service with its watch
// streams (ChainServer, fed by the compile-once hub in chainwatch), the
// operator service (OperatorServer: members, peers, status), the catalog
// service (CatalogServer: service instances and their health) and the
// server options every chainstore gRPC server uses (NewGRPCServer).
// NewServices builds the four services over one router and Register
// puts them on a *grpc.Server. Clients use package api; wire types are
// generated into proto/chainstore/v1 by `make proto`.
//
// # The router
//
// Every service routes requests through one router (router.go), which
// owns leader lookup, forwarding (it hands the caller a ready connection
// to the leader, so a request is always sent to the leader it looked up),
// the consistency modes, blocking reads and the response metadata. The
// services keep no routing state of their own.
//
// # Request paths
//
// Admission (limits.go): before any handler runs, a server refuses with
// ResourceExhausted (reason OVERLOADED, with a RetryInfo) a write beyond
// ServerConfig.MaxConcurrentWrites in flight, or a blocking read beyond
// MaxBlockingQueries, and rejects entry names over MaxEntryNameLen bytes,
// not UTF-8, or with control characters (InvalidArgument).
//
// Writes (Apply, Delete): the 512 KiB size limit is checked where the
// request arrives; the entry is decoded (chain.DecodeEntry) and prepared
// (chain.Prepare) where the write runs: on the leader, or on a server
// that knows no leader (so bad input is refused at once, not held). A
// follower that knows the leader forwards the request as it came and
// returns the leader's refusal unchanged (EntriesServer.Apply). The
// leader then skips a write that would not change the stored entry
// (returning its existing index) and otherwise proposes an fsm.Command
// through fsm.Proposer (which encodes it and unwraps the FSM's typed
// result); graph validation runs inside the FSM on every
// node and its *chain.GraphError comes back as InvalidArgument. A follower
// forwards the request over gRPC to the leader's address (from
// cluster.ServerGRPCAddr: the admitted member at the Raft address Raft reports for the leader,
// cached for a second by leaderAddrCache) with a header that stops a second hop.
//
// Retries (router.onLeader): only while the error proves nothing was written: no
// leader known, "not the leader" before the proposal, leader not ready,
// or no connection to the leader could be made (the forwarder only sends
// on a ready connection). Backoff is jittered and exponential, bounded by
// ServerConfig.HoldTimeout (7 s). raftnode.ErrUnknownOutcome, and a
// connection to the leader lost after a write was sent, become
// codes.Unknown with reason UNKNOWN_OUTCOME.
//
// Reads (Get, List) run through blockingQuery, the single blocking-read
// function (see its contract), with two behaviours: stale (any server
// answers from its own state) and linearizable, for both the default and
// the consistent mode (raftnode.ReadIndex, then fsm.WaitForIndex, then
// read on the leader; followers forward). Every response carries the index
// it reflects: the key's own index for Get.
//
// ACLs (acl.go, acl_service.go; docs/acl.md): every handler checks the
// token of the request (gRPC metadata api.TokenMetadataKey) where the
// request executes: on the leader for forwarded requests (the follower
// copies the caller's token into the forwarded metadata and decides
// nothing), on the answering server for stale reads and watches. The
// check reads the server's own replicated state through a per-server
// cache keyed by the secret's hash and invalidated by any ACL change.
// List and catalog Services filter instead of failing; GetChain and Watch
// refuse a chain that reaches a service the token cannot read. Other
// services of the process call Services.Authorize.
//
// Errors are translated once, in statusOf: chain errors -> InvalidArgument,
// not leader -> FailedPrecondition with a leader hint, no leader ->
// Unavailable, unknown outcome -> Unknown, enqueue timeout ->
// ResourceExhausted, context -> DeadlineExceeded/Canceled. Each carries a
// google.rpc.ErrorInfo (api.ErrorReason, api.ErrorText read it on the client).
//
// # Goroutines
//
// Handlers run on gRPC's per-request goroutines. The only goroutine the
// package starts is one per Watch stream, which reads the agent's
// subscribe/unsubscribe requests while the handler's goroutine sends
// versions; it ends when Recv fails, which grpc-go guarantees once the
// handler has returned (it is not joined explicitly).
// Unary handlers: a blocked query holds its request goroutine
// until its index moves, its wait ends, the client goes away, or
// Services.Close closes the router's shutdownCh (package server closes it
// before GracefulStop, so shutdown never waits for a blocked query). The
// forwarder's client connections own grpc-go's internal goroutines;
// Services.Close closes them. The owner of the *grpc.Server (package
// server) runs Serve and stops it.
package rpc
