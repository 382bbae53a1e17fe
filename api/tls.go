package api

import (
	"crypto/tls"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/chainstore/chainstore/tlsutil"
)

// TLSConfig says how a client speaks TLS to the servers. The zero value is
// plain text.
type TLSConfig struct {
	// CAFile is the CA that signed the servers' certificates; setting it
	// turns TLS on. The servers must present a chainstore server
	// certificate (server.<dc>.chainstore) signed by it.
	CAFile string
	// CertFile and KeyFile are this client's certificate and key, which
	// servers started with verify_incoming require.
	CertFile, KeyFile string
	// ServerName, when set, is the exact name the servers' certificates
	// must carry (e.g. server.dc1.chainstore).
	ServerName string
	// Config, when not nil, is used as is instead of the files.
	Config *tls.Config
}

// enabled reports whether TLS is on.
func (t TLSConfig) enabled() bool { return t.Config != nil || t.CAFile != "" }

// credentials returns the gRPC transport credentials for t.
func (t TLSConfig) credentials() (credentials.TransportCredentials, error) {
	if !t.enabled() {
		if t.CertFile != "" || t.KeyFile != "" {
			_, err := tlsutil.ClientConfig("", t.CertFile, t.KeyFile, "")
			return nil, err
		}
		return insecure.NewCredentials(), nil
	}
	cfg := t.Config
	if cfg == nil {
		var err error
		if cfg, err = tlsutil.ClientConfig(t.CAFile, t.CertFile, t.KeyFile, t.ServerName); err != nil {
			return nil, err
		}
	}
	return credentials.NewTLS(cfg), nil
}
