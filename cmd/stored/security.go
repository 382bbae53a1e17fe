package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/server"
	"github.com/chainstore/chainstore/tlsutil"
)

// securityFlags are the TLS and gossip-encryption flags (docs/security.md).
type securityFlags struct {
	caFile, certFile, keyFile string
	verifyIncoming            bool
}

// registerSecurityFlags registers --ca-file, --cert-file, --key-file,
// --verify-incoming, --encrypt and --insecure.
func registerSecurityFlags(fs *flag.FlagSet, cfg *server.Config) *securityFlags {
	f := &securityFlags{}
	fs.StringVar(&f.caFile, "ca-file", "", "PEM CA certificate; with --cert-file and --key-file turns on TLS for gRPC and mutual TLS for Raft")
	fs.StringVar(&f.certFile, "cert-file", "", "PEM server certificate (storectl tls cert create --server --node NAME)")
	fs.StringVar(&f.keyFile, "key-file", "", "PEM key of --cert-file")
	fs.BoolVar(&f.verifyIncoming, "verify-incoming", true, "with TLS, require a client certificate from the CA on gRPC")
	fs.StringVar(&cfg.Encrypt, "encrypt", "", "base64 gossip encryption key (storectl keyring generate); a keyring persisted in --data-dir wins")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "allow a non-loopback address without TLS and a gossip key")
	return f
}

// apply sets cfg.TLS when any TLS file is given (Validate reports a
// missing one).
func (f *securityFlags) apply(cfg *server.Config) {
	if f.caFile == "" && f.certFile == "" && f.keyFile == "" {
		return
	}
	tc := tlsutil.DefaultConfig()
	tc.CAFile, tc.CertFile, tc.KeyFile, tc.VerifyIncoming = f.caFile, f.certFile, f.keyFile, f.verifyIncoming
	cfg.TLS = &tc
}

// reloadOnSIGHUP reloads the server's certificates on every SIGHUP until
// ctx is done or the returned stop is called (which joins its goroutine).
func reloadOnSIGHUP(ctx context.Context, srv *server.Server, logger hclog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if srv.TLS() == nil {
					logger.Info("SIGHUP: TLS is off, nothing to reload")
					continue
				}
				if err := srv.ReloadTLS(); err != nil {
					logger.Error("SIGHUP: certificate reload failed; the old certificates stay in use", "error", err)
				}
			}
		}
	})
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}
