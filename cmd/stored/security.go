package main

import (
	"flag"
	"fmt"
	"sync/atomic"

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

// tlsReloadHook is the SIGHUP reload hook (config.go) for certificates:
// once srv is set and TLS is on, it reads the CA, certificate and key files
// again; on failure the old certificates stay in use.
func tlsReloadHook(srv *atomic.Pointer[server.Server]) reloadHook {
	return func(_ server.Config, logger hclog.Logger) error {
		s := srv.Load()
		if s == nil || s.TLS() == nil {
			return nil
		}
		if err := s.ReloadTLS(); err != nil {
			return fmt.Errorf("certificate reload failed; the old certificates stay in use: %w", err)
		}
		logger.Info("SIGHUP: certificates reloaded")
		return nil
	}
}
