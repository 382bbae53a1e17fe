package cluster

import (
	"context"
	"math/rand/v2"
	"time"
)

// joinLoop contacts the Join addresses until one answers, with jittered
// exponential backoff from JoinRetryMin to JoinRetryMax, so servers can
// start in any order. Afterwards it checks every JoinRetryMax whether this
// node is alone (every peer failed or left, e.g. after a long partition)
// and joins again if so. It returns when ctx is done or on Shutdown. A
// memberlist.Join in progress is not interruptible; it is bounded by
// Gossip.TCPTimeout per address.
func (c *Cluster) joinLoop(ctx context.Context) {
	if len(c.cfg.Join) == 0 {
		return
	}
	backoff := c.cfg.JoinRetryMin
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.shutdownCh:
			return
		case <-timer.C:
		}
		wait := c.cfg.JoinRetryMax
		if c.ml.NumMembers() <= 1 {
			if c.tryJoin() {
				backoff = c.cfg.JoinRetryMin
			} else {
				wait = jitter(backoff)
				backoff = min(2*backoff, c.cfg.JoinRetryMax)
			}
		}
		timer.Reset(wait)
	}
}

// tryJoin makes one attempt at every Join address; true if any answered.
func (c *Cluster) tryJoin() bool {
	n, err := c.ml.Join(c.cfg.Join)
	if n > 0 {
		c.logger.Info("joined cluster", "contacted", n, "addresses", c.cfg.Join)
		return true
	}
	c.joinFailures.Add(1)
	c.logger.Warn("join failed; retrying", "addresses", c.cfg.Join, "error", err)
	return false
}

// jitter returns a duration in [d/2, d).
func jitter(d time.Duration) time.Duration {
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half)
}
