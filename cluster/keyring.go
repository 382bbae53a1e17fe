package cluster

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/memberlist"
)

// Gossip encryption: memberlist encrypts every gossip packet with the
// keyring's primary key and accepts any key of the keyring, so keys can be
// rotated without a partition (install everywhere, use everywhere, remove
// the old one everywhere). The keyring is persisted in the data dir so a
// restarted server comes back with the keys in use, not its --encrypt key.

// KeyringFile is the name of the persisted keyring in the data dir.
const KeyringFile = "keyring.json"

// ErrKeyring reports an invalid key or keyring operation.
var ErrKeyring = errors.New("invalid gossip key")

// keyringDoc is the persisted form: base64 keys, primary first.
type keyringDoc struct {
	Keys []string `json:"keys"`
}

// DecodeKey decodes a base64 gossip key of 16, 24 or 32 bytes.
func DecodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("gossip key is not base64: %w: %w", ErrKeyring, err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	default:
		return nil, fmt.Errorf("gossip key is %d bytes, want 16, 24 or 32: %w", len(k), ErrKeyring)
	}
}

// LoadKeyring returns the keyring persisted in dataDir, or, when there is
// none, a keyring holding only initial (base64; "" means no encryption:
// nil keyring) which it persists. A persisted keyring wins over initial,
// so rotated keys survive a restart with the original --encrypt flag.
func LoadKeyring(dataDir, initial string) (*memberlist.Keyring, error) {
	path := filepath.Join(dataDir, KeyringFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if initial == "" {
			return nil, nil
		}
		k, err := DecodeKey(initial)
		if err != nil {
			return nil, err
		}
		kr, err := memberlist.NewKeyring(nil, k)
		if err != nil {
			return nil, fmt.Errorf("create keyring: %w", err)
		}
		if err := SaveKeyring(dataDir, kr); err != nil {
			return nil, err
		}
		return kr, nil
	case err != nil:
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	var doc keyringDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode keyring %s: %w", path, err)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("keyring %s holds no key: %w", path, ErrKeyring)
	}
	keys := make([][]byte, 0, len(doc.Keys))
	for _, s := range doc.Keys {
		k, err := DecodeKey(s)
		if err != nil {
			return nil, fmt.Errorf("keyring %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	kr, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("create keyring: %w", err)
	}
	return kr, nil
}

// SaveKeyring writes kr's keys (primary first) to dataDir atomically with
// mode 0600.
func SaveKeyring(dataDir string, kr *memberlist.Keyring) error {
	doc := keyringDoc{}
	for _, k := range kr.GetKeys() { // primary first
		doc.Keys = append(doc.Keys, base64.StdEncoding.EncodeToString(k))
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode keyring: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, KeyringFile+".tmp*")
	if err != nil {
		return fmt.Errorf("write keyring: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sync keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close keyring: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dataDir, KeyringFile)); err != nil {
		return fmt.Errorf("replace keyring: %w", err)
	}
	return nil
}

// KeyringOp is one keyring change.
type KeyringOp uint8

// Keyring operations.
const (
	KeyInstall KeyringOp = iota + 1 // add a key (not used for sending yet)
	KeyUse                          // make an installed key the primary
	KeyRemove                       // remove a key that is not the primary
)

func (o KeyringOp) String() string {
	switch o {
	case KeyInstall:
		return "install"
	case KeyUse:
		return "use"
	case KeyRemove:
		return "remove"
	default:
		return "?"
	}
}

// Keys returns this server's gossip keys (base64), primary first; nil if
// gossip is not encrypted.
func (c *Cluster) Keys() []string {
	kr := c.cfg.Keyring
	if kr == nil {
		return nil
	}
	var out []string
	for _, k := range kr.GetKeys() {
		out = append(out, base64.StdEncoding.EncodeToString(k))
	}
	return out
}

// ChangeKeyring applies op with key (base64) to this server's keyring and
// persists it in dataDir. It fails when gossip is not encrypted (the
// keyring cannot be turned on at run time), for an invalid key, for using
// a key that is not installed and for removing the primary key.
func (c *Cluster) ChangeKeyring(dataDir string, op KeyringOp, key string) error {
	kr := c.cfg.Keyring
	if kr == nil {
		return fmt.Errorf("gossip encryption is off on %s (start it with --encrypt): %w", c.cfg.NodeName, ErrKeyring)
	}
	k, err := DecodeKey(key)
	if err != nil {
		return err
	}
	c.keyringMu.Lock()
	defer c.keyringMu.Unlock()
	switch op {
	case KeyInstall:
		err = kr.AddKey(k)
	case KeyUse:
		err = kr.UseKey(k)
	case KeyRemove:
		err = kr.RemoveKey(k)
	default:
		return fmt.Errorf("unknown keyring operation %d: %w", op, ErrKeyring)
	}
	if err != nil {
		return fmt.Errorf("keyring %s on %s: %w: %w", op, c.cfg.NodeName, ErrKeyring, err)
	}
	return SaveKeyring(dataDir, kr)
}
