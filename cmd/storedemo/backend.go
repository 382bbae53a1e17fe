package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// Response headers in which a backend names itself.
const (
	backendHeader  = "backend"
	instanceHeader = "instance"
)

// stopGrace bounds GracefulStop of a backend before it is stopped hard.
const stopGrace = 2 * time.Second

func runBackend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "backend name sent in the \"backend\" response header, e.g. v1 (required)")
	id := fs.String("id", "", "instance name sent in the \"instance\" response header (default --name)")
	addr := fs.String("addr", "127.0.0.1:0", "loopback address to listen on (port 0: any free port)")
	addrFile := fs.String("addr-file", "", "write the bound address to this file (atomically) once listening")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *name == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "storedemo backend: --name is required and no arguments are taken")
		return 2
	}
	if *id == "" {
		*id = *name
	}
	if err := checkLoopback(*addr); err != nil {
		fmt.Fprintf(stderr, "storedemo backend: --addr: %v\n", err)
		return 2
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "storedemo backend: %v\n", err)
		return 1
	}
	gs := newBackendServer(*name, *id)
	// served is closed when Serve returns, with its error in serveErr.
	served := make(chan struct{})
	var serveErr error
	go func() {
		defer close(served)
		serveErr = gs.Serve(lis)
	}()

	bound := lis.Addr().String()
	if *addrFile != "" {
		if err := writeFileAtomic(*addrFile, bound+"\n"); err != nil {
			gs.Stop()
			<-served
			fmt.Fprintf(stderr, "storedemo backend: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "backend %s (instance %s) listening on %s\n", *name, *id, bound)

	select {
	case <-ctx.Done():
	case <-served:
		fmt.Fprintf(stderr, "storedemo backend: serve: %v\n", serveErr)
		return 1
	}
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(stopGrace):
		gs.Stop()
		<-stopped
	}
	<-served
	return 0
}

// newBackendServer returns a gRPC server with the health service whose
// every unary response carries the backend and instance headers.
func newBackendServer(name, id string) *grpc.Server {
	gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs(backendHeader, name, instanceHeader, id))
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	return gs
}

// checkLoopback accepts host:port whose host is localhost or a loopback IP.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address (the demo stays on this machine)", addr)
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(data); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return nil
}
