package cli

import (
	"flag"
	"os"
)

// TokenEnv names the environment variable holding the default --token of
// storectl and storeagent.
const TokenEnv = "STORE_TOKEN"

// TokenFlag registers --token (the ACL SecretID sent with every request)
// into p, with $STORE_TOKEN as its default. The default is not shown in
// the usage text, so -h never prints a secret.
func TokenFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "token", "", "ACL token (SecretID) sent with every request (env "+TokenEnv+")")
	*p = os.Getenv(TokenEnv)
}
