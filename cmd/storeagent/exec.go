package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/api"
)

// outFileMode and outDirMode are the modes of --out files and of the --out
// directory when the agent creates it.
func outFileMode(cfg Config) os.FileMode {
	if cfg.OutWorldReadable {
		return 0o644
	}
	return 0o600
}

func outDirMode(cfg Config) os.FileMode {
	if cfg.OutWorldReadable {
		return 0o755
	}
	return 0o700
}

// execRunner runs the --exec command after changes, one run at a time.
// Changes that arrive while a run is under way are collected: the next run
// gets all of them (CHAIN_SERVICES), or, per service, one run each.
type execRunner struct {
	cmd        string
	perService bool
	output     io.Writer
	logger     hclog.Logger

	kick chan struct{} // capacity 1: a run is pending

	mu      sync.Mutex       // protects pending
	pending []api.ChainEvent // changes not yet passed to the command, oldest first, one per service

	cancel context.CancelFunc
	wg     sync.WaitGroup // loop
}

func newExecRunner(cmd string, perService bool, output io.Writer, logger hclog.Logger) *execRunner {
	return &execRunner{cmd: cmd, perService: perService, output: output, logger: logger, kick: make(chan struct{}, 1)}
}

func (r *execRunner) start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.wg.Add(1)
	go r.loop(ctx)
}

// stop kills a running command and joins the loop.
func (r *execRunner) stop() {
	r.cancel()
	r.wg.Wait()
}

// trigger records e (replacing an older pending change of the same
// service, which moves to the end) and wakes the loop.
func (r *execRunner) trigger(e api.ChainEvent) {
	r.mu.Lock()
	for i, p := range r.pending {
		if p.Service == e.Service {
			r.pending = append(r.pending[:i], r.pending[i+1:]...)
			break
		}
	}
	r.pending = append(r.pending, e)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *execRunner) takePending() []api.ChainEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending
	r.pending = nil
	return p
}

func (r *execRunner) loop(ctx context.Context) {
	defer r.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		batch := r.takePending()
		if len(batch) == 0 {
			continue
		}
		if !r.perService {
			r.run(ctx, batch)
			continue
		}
		for _, e := range batch {
			if ctx.Err() != nil {
				return
			}
			r.run(ctx, []api.ChainEvent{e})
		}
	}
}

// run runs the command once for batch (oldest first); the newest change
// is described by CHAIN_SERVICE, CHAIN_INDEX and CHAIN_HASH.
func (r *execRunner) run(ctx context.Context, batch []api.ChainEvent) {
	names := make([]string, len(batch))
	for i, e := range batch {
		names[i] = e.Service
	}
	newest := batch[len(batch)-1]
	c := exec.CommandContext(ctx, "sh", "-c", r.cmd)
	c.Stdout, c.Stderr = r.output, r.output
	c.Env = append(os.Environ(),
		"CHAIN_SERVICES="+strings.Join(names, " "),
		"CHAIN_SERVICE="+newest.Service,
		"CHAIN_INDEX="+strconv.FormatUint(newest.Index, 10),
		"CHAIN_HASH="+newest.Hash,
	)
	c.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := c.Run(); err != nil && ctx.Err() == nil {
		r.logger.Warn("--exec command failed", "services", names, "error", err, "took", time.Since(start))
	}
}

// statusLine is the JSON of --status-file.
type statusLine struct {
	Stale  bool      `json:"stale"`
	Reason string    `json:"reason,omitempty"`
	Server string    `json:"server,omitempty"`
	Since  time.Time `json:"since"`
}

// reportStatus logs a change of the watch status and rewrites
// --status-file. The chains themselves stay as they are: stale but stated.
func reportStatus(st api.WatchStatus, cfg Config, logger hclog.Logger) {
	if st.Stale {
		logger.Warn("serving the last chains received; they may be stale until a server with a leader answers", "reason", st.Reason)
	} else {
		logger.Info("chains are current again", "server", st.Server)
	}
	if cfg.StatusFile == "" {
		return
	}
	data, err := json.Marshal(statusLine{Stale: st.Stale, Reason: st.Reason, Server: st.Server, Since: st.Since.UTC()})
	if err == nil {
		err = writeFileAtomic(cfg.StatusFile, append(data, '\n'), outFileMode(cfg))
	}
	if err != nil {
		logger.Error("cannot write --status-file", "path", cfg.StatusFile, "error", err)
	}
}
