package acl

import (
	"crypto/sha256"
	"encoding/hex"
)

// Built-in identities, with Consul's well-known IDs.
const (
	// GlobalManagementPolicyID is the built-in policy that grants
	// everything; the bootstrap token holds it. It cannot be changed or
	// deleted.
	GlobalManagementPolicyID   = "00000000-0000-0000-0000-000000000001"
	GlobalManagementPolicyName = "global-management"
	// GlobalManagementRules are its rules.
	GlobalManagementRules = "service_prefix \"\" { policy = \"write\" }\noperator = \"write\"\nacl = \"write\"\n"

	// AnonymousTokenID is the AccessorID of the token used by requests that
	// carry none. It holds no policy, so with the deny default it may do
	// nothing.
	AnonymousTokenID = "00000000-0000-0000-0000-000000000002"
)

// HashSecret returns the stored form of a SecretID: hex SHA-256. Secrets
// are random UUIDs (122 bits), so an unsalted fast hash is enough to make
// a stolen snapshot useless: it cannot be reversed or guessed.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
