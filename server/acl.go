package server

import (
	"path/filepath"

	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/rpc"
	"github.com/chainstore/chainstore/xdsserver"
)

// ACLBootstrapResetFile is the name, in the data directory, of the file an
// operator writes the reset index into to allow another ACL bootstrap.
const ACLBootstrapResetFile = "acl-bootstrap-reset"

// aclConfig derives the rpc layer's ACL settings from cfg.
func aclConfig(cfg Config) rpc.ACLConfig {
	policy := cfg.ACLDefaultPolicy
	if policy == "" {
		policy = rpc.ACLPolicyDeny
	}
	return rpc.ACLConfig{
		Enabled:            cfg.ACLEnabled,
		DefaultPolicy:      policy,
		BootstrapResetFile: filepath.Join(cfg.DataDir, ACLBootstrapResetFile),
	}
}

// xdsACL returns the xDS server's options for cfg: with ACLs on, clients
// see only what the token in their node metadata may read.
func xdsACL(cfg rpc.ACLConfig, f *fsm.FSM) []xdsserver.Option {
	if !cfg.Enabled {
		return nil
	}
	return []xdsserver.Option{xdsserver.WithAuthorizer(rpc.NewACLResolver(cfg, f).ServiceReader)}
}
