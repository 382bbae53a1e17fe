package raftnode

// AddNonvoter adds id at addr as a non-voter: it receives the log but does
// not vote or count for quorum (the first stage of a new server, promoted
// later with AddVoter). It is a no-op when id is already present at addr,
// voter or not (it never demotes). A stale entry (same ID at another
// address, or another ID at the same address) is removed first, as in
// AddVoter. Leader only (ErrNotLeader otherwise).
func (n *Node) AddNonvoter(id, addr string) error { return n.addServer(id, addr, false) }
