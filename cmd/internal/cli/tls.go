package cli

import (
	"flag"
	"os"

	"github.com/chainstore/chainstore/api"
)

// Environment variables holding the defaults of the TLS flags of storectl
// and storeagent.
const (
	CACertEnv     = "STORE_CACERT"
	ClientCertEnv = "STORE_CLIENT_CERT"
	ClientKeyEnv  = "STORE_CLIENT_KEY"
)

// TLSFlags are the values of --ca-file, --cert-file and --key-file.
type TLSFlags struct {
	CAFile, CertFile, KeyFile string
}

// RegisterTLSFlags registers --ca-file, --cert-file and --key-file into
// fs, defaulting to $STORE_CACERT, $STORE_CLIENT_CERT and
// $STORE_CLIENT_KEY.
func RegisterTLSFlags(fs *flag.FlagSet) *TLSFlags {
	t := &TLSFlags{}
	fs.StringVar(&t.CAFile, "ca-file", os.Getenv(CACertEnv), "PEM CA certificate; turns on TLS to the servers (env "+CACertEnv+")")
	fs.StringVar(&t.CertFile, "cert-file", os.Getenv(ClientCertEnv), "PEM client certificate (env "+ClientCertEnv+")")
	fs.StringVar(&t.KeyFile, "key-file", os.Getenv(ClientKeyEnv), "PEM key of --cert-file (env "+ClientKeyEnv+")")
	return t
}

// API returns the api.TLSConfig of the flags.
func (t *TLSFlags) API() api.TLSConfig {
	return api.TLSConfig{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}
}

// TakesValue reports whether the global flag called name (without
// dashes) takes its value in the next argument (--addr x), so commands can
// split the global flags off the command line.
func TakesValue(name string) bool {
	switch name {
	case "addr", "timeout", "token", "ca-file", "cert-file", "key-file":
		return true
	}
	return false
}
