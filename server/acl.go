package server

import (
	"path/filepath"

	"github.com/chainstore/chainstore/rpc"
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
