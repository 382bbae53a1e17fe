// Package xdsserver serves the compiled discovery chains of one chainstore
// server over xDS to stock proxyless gRPC clients (grpc-go dialing
// xds:///<service>), following the design document docs/xds.md
// (sections cited as §n). The resources themselves come from package xds
// (xds.Build, xds.Validate); this package decides what to publish and when,
// and keeps track of the clients.
//
// # Serving
//
// One go-control-plane LinearCache per resource type (listeners, route
// configurations, clusters, endpoints) sits behind a MuxCache classifying
// by type URL (Classify and ClassifyDelta), wrapped by go-control-plane's
// server and registered as envoy.service.discovery.v3.AggregatedDiscoveryService,
// state of the world and delta (§6.1, §6.3). Resources are fleet-wide (gRPC
// names are global), so there are no per-node snapshots. Every cache
// version starts with Config.VersionPrefix (by default derived from the
// node name and the start time), so versions of two servers, or of two
// runs of one server, never collide. Legacy wildcard requests are off: an
// empty request means no resource, as grpc-go means it.
//
// # Demand
//
// Nothing is published until a client asks: a request for listener "web"
// (the name a client dials) makes the server follow the chain of service
// web (chainwatch.ChainKey{Service: "web"}) from then on. The stream
// callbacks only record names in a set (bounded by Config.MaxChains) and
// poke Run through a one-slot channel; they never block and never touch
// the caches.
//
// # Publishing
//
// Run is the only writer of the caches. Each round it takes the new
// names and subscribes to their chains, reads every ready item of the
// FSM's change feed, and rebuilds:
//
//   - a chain whose hub version changed (new content: LDS, RDS, CDS and
//     EDS may change);
//   - a chain whose published targets use a service the feed reported in
//     ChangeSet.Services (the catalog: only endpoint assignments change);
//   - every chain after a snapshot restore (ChangeSet.Reset).
//
// All chains of a round read one catalog view. Each chain is translated
// (xds.Build) and validated (xds.Validate) on its own; a chain that fails
// adds nothing, keeps what it published before and records the error
// (Chains). A version that does not compile, or fails translation or
// validation, leaves the last published version of the chain in place,
// whose endpoints still follow the catalog. Of the resources that pass,
// only those whose deterministic encoding changed (a SHA-256 per type and
// name) are handed to UpdateResources, once per type per round, in the
// order clusters, endpoints, listeners, routes (§6.4): a client asks for
// a new cluster only once a route names it, and it is there by then.
//
// # Retention
//
// Nothing is ever removed from the caches: the resources of every chain
// requested while the server runs stay published (and the chains stay
// followed, so their endpoints stay current), and a cluster or assignment
// that a route no longer uses stays until the server stops. That is the
// simplest policy that never removes a resource some published chain, or
// some client that has not yet applied a newer route configuration, still
// references (§6.4, make-before-break). A cluster or assignment no
// published chain uses any more is no longer rebuilt: it keeps its last
// content until a chain uses it again. Memory is bounded by MaxChains
// chains and the clusters their versions ever used. A removal policy
// (unreferenced by every published route configuration, ACKed by every
// connected client, after a grace period) is future work.
//
// # ACK and NACK
//
// The callbacks keep per stream the node ID, user agent, peer and
// connection time, and per type the names asked for, the last version
// sent, the last version ACKed and the last NACK (its error_detail and the
// version it rejected); Clients returns them (§6.5). A rejected version is
// never re-sent: a linear cache remembers per stream what it sent and
// answers only when a requested resource changes, and guard covers the
// one case where it would answer at once (a NACK of the first response
// this server sent on the stream, whose version_info is empty or another
// server's).
//
// # Reconnecting clients
//
// A client whose server went away reconnects to another one and asks at
// once, in no set order, for everything it has, with the other server's
// versions. If this server does not follow that chain yet, a linear cache
// would answer the listener and cluster requests at once without those
// resources, which a gRPC client takes as their removal (measured: its
// RPCs failed with "resource ... has been removed"). guard holds such a
// forced answer of a full-state type back until every name it asks for
// is published, or Config.ReconnectHold has passed; Run releases it after
// each round (releaseDeferred; §6.6).
//
// # Goroutines
//
//   - Run: the publisher, started and cancelled by the owner (package
//     server, with the chain hub's context). It owns the subscriptions, the
//     feed cursor, the per-resource hashes and every cache update, and
//     opens the watches guard held back; it blocks in one select
//     (reflect.Select) over its ctx, the hub's Done, the wake channel, the
//     feed, a retry timer and the Superseded channel of each followed
//     chain. It returns when its ctx is done or the hub stopped, and then
//     ends every ADS stream (so a graceful gRPC stop does not wait for
//     them; clients reconnect to another server).
//   - The ADS stream handlers and their receive goroutines belong to
//     go-control-plane and grpc-go; the callbacks run on them and only
//     take the server's mutex briefly.
//
// The package starts no goroutine itself.
package xdsserver
