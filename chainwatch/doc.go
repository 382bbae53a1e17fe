// Package chainwatch is the per-server fan-out of compiled discovery
// chains: it compiles each watched chain once per change, whatever the
// number of watchers, and lets every watcher pick up the newest version at
// its own pace (docs/design.md, Chain watches).
//
// # Design
//
// A Hub follows the store's change feed (fsm.Feed, one ChangeSet per
// applied Raft batch). For every chain it tracks (a ChainKey: service,
// datacenter, overrides) it remembers the entry keys the last compile read
// (chain.CompileResult.Reads, including keys looked up and not found, and
// proxy-defaults), inverted into an index entry key -> chains. A change set
// marks dirty exactly the chains whose read set it intersects; each dirty
// chain that has a watcher is compiled once per processing round, against
// one consistent fsm.View, and its JSON encoded once. If the hash of the
// result is unchanged nothing is published. Otherwise the hub publishes a
// Version: index (the highest ModifyIndex or tombstone index among the
// keys read, from View.KeyIndex; never decreasing within an epoch), hash,
// JSON bytes or compile error text, and a protobuf message built once that
// every stream sends. Publishing swaps the chain's current pointer and
// closes the old version's Superseded channel: one close wakes every
// waiter, the writer never blocks and never touches a watcher.
//
// Rounds merge every feed item ready at once (up to 4096), so a burst of
// batches costs one compile per affected chain; a chain compiled (for a
// new subscriber) at a view newer than a feed item skips that item. A
// subscriber that needs a chain fresh as of an index the feed has not
// reported (the applied index also moves for logs that change no entry)
// gets the cached version if none of the keys it read has a newer index
// in the current view, and a recompile otherwise.
//
// Chains with no watcher are not compiled: they stay cached for
// Config.WarmTTL after their last watcher left, are marked stale when a
// change touches them, and are recompiled by the next subscriber, so a
// reconnect storm costs at most one compile per chain. After the TTL they
// are dropped.
//
// A snapshot restore (ChangeSet.Reset) starts a new epoch: every watched
// chain is recompiled and republished, and every Watcher emits
// EventReset then the current version for each subscription. Unwatched
// chains are dropped.
//
// A Watcher serves one client stream carrying many subscriptions. It keeps
// per subscription only the last version it looked at and the hash the
// client has, so a slow client skips intermediate versions and server
// memory is O(chains + subscriptions), never O(events). Resume: a
// subscription may carry the client's last index and hash; Add first waits
// (bounded by WatcherConfig.ResumeWait) until this server has applied that
// index, then subscribes with a version fresh as of it, so the client
// never gets a version older than the one it had (ErrBehind otherwise:
// try another server), and gets nothing if the hash is the same. Idle
// Watchers emit EventProgress (with jitter) carrying Hub.Index.
//
// # Usage
//
//	hub, err := chainwatch.New(chainwatch.DefaultConfig(), chainwatch.FSMSource(f), logger)
//	go hub.Run(ctx)                     // until ctx is done
//	w, err := chainwatch.NewWatcher(hub, chainwatch.DefaultWatcherConfig())
//	defer w.Close()
//	err = w.Add(ctx, 1, chainwatch.ChainKey{Service: "web"}, 0, "")
//	for { ev, err := w.Next(ctx); ...send ev... }
//
// rpc.ChainServer puts this behind the gRPC Watch stream and GetChain.
//
// # Goroutines
//
//   - Hub.Run (one per server, started and cancelled by the owner of the
//     hub, package server; it returns when its ctx is done and Done is
//     then closed). It is the single writer: it alone reads the feed,
//     compiles, publishes, owns the chains map and the dependency index
//     (no lock), serves subscribe requests (a buffered channel; each
//     request is answered at once, so Subscribe never hangs while Run is
//     alive) and sweeps expired warm chains on a ticker. It never blocks on
//     a watcher or a client.
//   - Compile workers: a round with many dirty chains (at least 32, e.g.
//     after a proxy-defaults change or a restore) is compiled by up to
//     GOMAXPROCS goroutines that Run starts and joins within that round;
//     they only read the View and the config, and Run installs their
//     results (read sets, versions) itself.
//   - The caller of Watcher.Next (one per stream: the gRPC handler
//     goroutine) blocks in a select over its subscriptions' Superseded
//     channels, a wake channel, the progress timer, the hub's Done and its
//     ctx. Add/Remove (the stream's receiver goroutine) take the Watcher's
//     mutex briefly and poke the wake channel; Add may wait up to
//     ResumeWait for the store to catch up.
//   - Subscription.Close and Watcher.Close may run on any goroutine; they
//     only update atomics and never wait.
//
// The package starts no goroutine itself: Run is called by its owner, and
// everything else runs on callers' goroutines. Stopping the hub (cancel
// Run's ctx) ends every Watcher.Next with ErrStopped and makes Subscribe
// fail with ErrStopped.
package chainwatch
