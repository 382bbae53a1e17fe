package main

// Operator debug endpoint: --pprof-addr serves net/http/pprof (CPU, heap,
// goroutine, block and mutex profiles, execution traces) on a loopback
// address. It is off by default. The handlers are mounted on a private
// ServeMux, never on http.DefaultServeMux.
//
// Goroutines: startDebug starts one goroutine running http.Server.Serve;
// the returned stop function shuts the server down and joins it.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/hashicorp/go-hclog"
)

// debugOptions holds the operator debug flags.
type debugOptions struct {
	// PprofAddr is the loopback host:port serving /debug/pprof/; empty: off.
	PprofAddr string
}

// registerDebugFlags adds the debug flags to fs.
func registerDebugFlags(fs *flag.FlagSet) *debugOptions {
	d := &debugOptions{}
	fs.StringVar(&d.PprofAddr, "pprof-addr", "", "serve net/http/pprof on this loopback host:port (debugging; off when empty)")
	return d
}

// validate checks that the pprof address is a loopback address: profiles
// expose internals and must not be reachable from the network.
func (d debugOptions) validate() error {
	if d.PprofAddr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(d.PprofAddr)
	if err != nil {
		return fmt.Errorf("--pprof-addr %q: %w", d.PprofAddr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--pprof-addr %q: host must be a loopback address", d.PprofAddr)
	}
	return nil
}

// startDebug starts the pprof server when asked to and returns the address
// it listens on ("" when off). The returned function stops the server and
// waits for its goroutine; it is never nil.
func startDebug(d debugOptions, logger hclog.Logger) (addr string, stop func(), err error) {
	if d.PprofAddr == "" {
		return "", func() {}, nil
	}
	ln, err := net.Listen("tcp", d.PprofAddr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on --pprof-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("pprof server stopped", "error", err)
		}
	}()
	logger.Info("serving pprof", "addr", ln.Addr().String())
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}
