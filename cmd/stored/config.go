package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/cmd/internal/flagfile"
	"github.com/chainstore/chainstore/server"
	"github.com/chainstore/chainstore/version"
)

// errVersion is returned by parseFlags for --version: main prints the
// version and exits 0.
var errVersion = errors.New("version requested")

// fileFlags are the flags about the configuration itself.
type fileFlags struct {
	configFile  string
	showVersion bool
}

const configFileFlag = "config-file"

func registerFileFlags(fs *flag.FlagSet) *fileFlags {
	f := &fileFlags{}
	fs.StringVar(&f.configFile, configFileFlag, "", "HCL or JSON (.json) file of settings: each key is a flag name with _ for - (grpc_addr = \"...\"); flags given on the command line win; SIGHUP re-reads it")
	fs.BoolVar(&f.showVersion, "version", false, "print the version and exit")
	return f
}

// applyConfigFile sets, from the file named by --config-file, every flag
// not given on the command line. Keys naming --config-file, --version or
// a hidden --test-* flag are unknown.
func (f *fileFlags) applyConfigFile(fs *flag.FlagSet) error {
	if f.configFile == "" {
		return nil
	}
	values, err := flagfile.Load(f.configFile)
	if err != nil {
		return err
	}
	skip := func(name string) bool {
		return name == configFileFlag || name == "version" || strings.HasPrefix(name, testFlagPrefix)
	}
	if err := flagfile.Apply(fs, values, skip); err != nil {
		return fmt.Errorf("config file %s: %w", f.configFile, err)
	}
	return nil
}

// reloadHook applies part of a new configuration on SIGHUP; it returns an
// error when it cannot (the other hooks still run).
type reloadHook func(cfg server.Config, logger hclog.Logger) error

// reloader re-reads the command line and the configuration file on SIGHUP
// and applies what can change without a restart: the log level (and the
// reloadHooks). Other changed settings are logged as needing a restart.
type reloader struct {
	args   []string
	logger hclog.Logger
	stderr io.Writer
	// hooks run after the log level has been applied: the certificate
	// reload (tlsReloadHook, security.go).
	hooks []reloadHook

	mu      sync.Mutex // guards current
	current server.Config
}

// reload re-parses the configuration and applies it; it returns what was
// applied and the settings that need a restart.
func (r *reloader) reload() (applied, needRestart []string, err error) {
	cfg, _, err := parseFlags(r.args, r.stderr)
	if err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	old := r.current
	r.current = cfg
	r.mu.Unlock()
	if cfg.LogLevel != old.LogLevel {
		r.logger.SetLevel(hclog.LevelFromString(cfg.LogLevel))
		applied = append(applied, "log_level="+cfg.LogLevel)
	}
	for _, h := range r.hooks {
		if herr := h(cfg, r.logger); herr != nil {
			err = errors.Join(err, herr)
		}
	}
	needRestart = changedRestartSettings(old, cfg)
	return applied, needRestart, err
}

// changedRestartSettings names the settings other than the log level that
// differ between a and b (they take effect at the next start).
func changedRestartSettings(a, b server.Config) []string {
	var out []string
	diff := func(name string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			out = append(out, name)
		}
	}
	diff("node", a.NodeName, b.NodeName)
	diff("datacenter", a.Datacenter, b.Datacenter)
	diff("data_dir", a.DataDir, b.DataDir)
	diff("raft_addr", a.RaftAddr, b.RaftAddr)
	diff("raft_advertise", a.RaftAdvertise, b.RaftAdvertise)
	diff("gossip_addr", a.GossipAddr, b.GossipAddr)
	diff("gossip_advertise", a.GossipAdvertise, b.GossipAdvertise)
	diff("grpc_addr", a.GRPCAddr, b.GRPCAddr)
	diff("grpc_advertise", a.GRPCAdvertise, b.GRPCAdvertise)
	diff("join", a.Join, b.Join)
	diff("bootstrap_expect", a.BootstrapExpect, b.BootstrapExpect)
	diff("log_json", a.LogJSON, b.LogJSON)
	diff("raft_log_store", a.Raft.LogStore, b.Raft.LogStore)
	sort.Strings(out)
	return out
}

// watchSIGHUP runs r.reload on every SIGHUP until the returned stop is
// called; stop joins the goroutine.
func watchSIGHUP(r *reloader) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-hup:
				applied, restart, err := r.reload()
				if err != nil {
					r.logger.Error("SIGHUP: configuration not reloaded", "error", err)
					continue
				}
				r.logger.Info("SIGHUP: configuration reloaded", "applied", applied)
				if len(restart) > 0 {
					r.logger.Warn("SIGHUP: these settings changed but take effect only after a restart", "settings", restart)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}

// printVersion writes stored's version.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "stored %s\n", version.String())
}
