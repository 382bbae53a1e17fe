package fsm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/chainstore/chainstore/acl"
	"github.com/chainstore/chainstore/chain"
)

// ACLPolicy is a stored ACL policy. Rules are kept as written (HCL or
// JSON) and were checked with acl.Parse before they were stored.
type ACLPolicy struct {
	ID          string
	Name        string
	Description string `json:",omitempty"`
	Rules       string
	CreateIndex uint64 `json:",omitempty"`
	ModifyIndex uint64 `json:",omitempty"`
}

// ACLToken is a stored ACL token. Only the hash of its SecretID is kept
// (acl.HashSecret), so the replicated state, the Raft log and snapshots
// never hold a working secret.
type ACLToken struct {
	AccessorID  string
	SecretHash  string
	Description string   `json:",omitempty"`
	Policies    []string `json:",omitempty"` // policy IDs
	CreateIndex uint64   `json:",omitempty"`
	ModifyIndex uint64   `json:",omitempty"`
}

// ACL tables, their secondary indexes and the rows of the ACL meta table.
const (
	tableACLPolicies = "acl-policies"
	tableACLTokens   = "acl-tokens"
	tableACLMeta     = "acl-meta"

	indexName   = "name"
	indexSecret = "secret"

	// aclMetaBootstrap holds the Raft index of the bootstrap (0: never).
	aclMetaBootstrap = "bootstrap"
	// aclMetaIndex holds the highest Raft index that changed ACL state.
	aclMetaIndex = "index"
)

func aclTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableACLPolicies: {
			Name: tableACLPolicies,
			Indexes: map[string]*memdb.IndexSchema{
				indexID:   {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				indexName: {Name: indexName, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name", Lowercase: true}},
			},
		},
		tableACLTokens: {
			Name: tableACLTokens,
			Indexes: map[string]*memdb.IndexSchema{
				indexID:     {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "AccessorID"}},
				indexSecret: {Name: indexSecret, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "SecretHash"}},
			},
		},
		tableACLMeta: {
			Name: tableACLMeta,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
	}
}

// isACLOp reports whether op (flag stripped) is an ACL command.
func isACLOp(op Op) bool {
	switch op.base() {
	case OpACLBootstrap, OpACLPolicySet, OpACLPolicyDelete, OpACLTokenSet, OpACLTokenDelete:
		return true
	}
	return false
}

// aclBody is the JSON body of every ACL command.
type aclBody struct {
	Policy     *ACLPolicy `json:",omitempty"`
	Token      *ACLToken  `json:",omitempty"`
	ID         string     `json:",omitempty"`
	ResetIndex uint64     `json:",omitempty"`
}

// Wire format of the ACL commands: the type byte, then in log format v1
// (type bytes 0x13-0x17, command_v1.go) the raftlogv1.ACLCommand protobuf
// of aclBody, or in v0 (type bytes OpACL*, read only) its JSON, unknown
// fields refused either way. The fields each command carries:
//
//	OpACLBootstrap:    Token (the management token), ResetIndex
//	OpACLPolicySet:    Policy
//	OpACLPolicyDelete: ID
//	OpACLTokenSet:     Token
//	OpACLTokenDelete:  ID
//
// None carries IgnoreUnknownFlag: a replica that skipped them would
// authorize differently.
func encodeACLCommand(c Command) ([]byte, error) {
	op := c.Op.base()
	if c.Entry != nil || c.Key != (chain.Key{}) || c.Instance != nil || c.InstanceID != "" || c.CASIndex != 0 {
		return nil, fmt.Errorf("encode %s with entry or catalog fields: %w", op, ErrMalformedCommand)
	}
	body := aclBody{Policy: c.ACLPolicy, Token: c.ACLToken, ID: c.ACLID, ResetIndex: c.ACLResetIndex}
	if err := checkACLBody(op, body); err != nil {
		return nil, fmt.Errorf("encode %s: %w", op, err)
	}
	return encodeACLV1(op, body)
}

// checkACLBody checks that body carries exactly what op needs.
func checkACLBody(op Op, b aclBody) error {
	ok := false
	switch op {
	case OpACLBootstrap:
		ok = b.Token != nil && b.Policy == nil && b.ID == ""
	case OpACLPolicySet:
		ok = b.Policy != nil && b.Token == nil && b.ID == "" && b.ResetIndex == 0
	case OpACLTokenSet:
		ok = b.Token != nil && b.Policy == nil && b.ID == "" && b.ResetIndex == 0
	case OpACLPolicyDelete, OpACLTokenDelete:
		ok = b.ID != "" && b.Policy == nil && b.Token == nil && b.ResetIndex == 0
	}
	if !ok {
		return fmt.Errorf("wrong fields for %s: %w", op, ErrMalformedCommand)
	}
	if b.Token != nil && (b.Token.AccessorID == "" || len(b.Token.SecretHash) != 64) {
		return fmt.Errorf("token needs an AccessorID and a SecretHash: %w", ErrMalformedCommand)
	}
	if b.Policy != nil && (b.Policy.ID == "" || b.Policy.Name == "") {
		return fmt.Errorf("policy needs an ID and a Name: %w", ErrMalformedCommand)
	}
	return nil
}

func decodeACLCommand(op Op, rest []byte) (Command, error) {
	var b aclBody
	if err := decodeJSONExact(rest, &b); err != nil {
		return Command{Op: op}, fmt.Errorf("decode %s: %w: %w", op, ErrMalformedCommand, err)
	}
	return aclCommand(op, b)
}

// aclCommand checks a decoded ACL body (either log format) and returns
// its command.
func aclCommand(op Op, b aclBody) (Command, error) {
	if err := checkACLBody(op, b); err != nil {
		return Command{Op: op}, fmt.Errorf("decode %s: %w", op, err)
	}
	return Command{Op: op, ACLPolicy: b.Policy, ACLToken: b.Token, ACLID: b.ID, ACLResetIndex: b.ResetIndex}, nil
}

// ACLError is a rejected ACL command: the state is unchanged and Msg says
// why (a duplicate name, an unknown policy, bootstrap already done).
type ACLError struct {
	Msg string
	// Bootstrapped is set when a bootstrap was refused; ResetIndex is the
	// index an operator writes to the reset file to allow another.
	Bootstrapped bool
	ResetIndex   uint64
}

func (e *ACLError) Error() string { return e.Msg }

// applyACLBootstrap stores the first management token. It is refused once
// done, unless the command carries the current bootstrap index as
// ResetIndex (the documented reset procedure).
func applyACLBootstrap(w *writer, index uint64, cmd Command) ApplyResult {
	res := ApplyResult{Index: index}
	done := readIndexRow(w.txn, tableACLMeta, aclMetaBootstrap)
	if done != 0 && cmd.ACLResetIndex != done {
		res.Err = &ACLError{Msg: fmt.Sprintf("ACL bootstrap no longer allowed (reset index: %d)", done), Bootstrapped: true, ResetIndex: done}
		return res
	}
	t := *cmd.ACLToken
	t.Policies = []string{acl.GlobalManagementPolicyID}
	if err := w.putToken(&t, index); err != nil {
		res.Err = err
		return res
	}
	must(w.txn.Insert(tableACLMeta, &indexRow{Name: aclMetaBootstrap, Value: index}))
	res.Applied = true
	return res
}

func applyACLPolicySet(w *writer, index uint64, cmd Command) ApplyResult {
	res := ApplyResult{Index: index}
	p := *cmd.ACLPolicy
	if p.ID == acl.GlobalManagementPolicyID || strings.EqualFold(p.Name, acl.GlobalManagementPolicyName) {
		res.Err = &ACLError{Msg: "the built-in global-management policy cannot be changed"}
		return res
	}
	if _, err := acl.Parse(p.Rules); err != nil {
		res.Err = &ACLError{Msg: err.Error()}
		return res
	}
	raw, err := w.txn.First(tableACLPolicies, indexName, p.Name)
	must(err)
	if raw != nil && raw.(*ACLPolicy).ID != p.ID {
		res.Err = &ACLError{Msg: fmt.Sprintf("a policy named %q already exists", p.Name)}
		return res
	}
	p.CreateIndex, p.ModifyIndex = index, index
	raw, err = w.txn.First(tableACLPolicies, indexID, p.ID)
	must(err)
	if raw != nil {
		p.CreateIndex = raw.(*ACLPolicy).CreateIndex
	}
	must(w.txn.Insert(tableACLPolicies, &p))
	w.bumpACLIndex(index)
	res.Applied = true
	return res
}

func applyACLPolicyDelete(w *writer, index uint64, cmd Command) ApplyResult {
	res := ApplyResult{Index: index, Applied: true}
	if cmd.ACLID == acl.GlobalManagementPolicyID {
		return ApplyResult{Index: index, Err: &ACLError{Msg: "the built-in global-management policy cannot be deleted"}}
	}
	raw, err := w.txn.First(tableACLPolicies, indexID, cmd.ACLID)
	must(err)
	if raw != nil {
		must(w.txn.Delete(tableACLPolicies, raw))
		w.bumpACLIndex(index)
	}
	return res
}

func applyACLTokenSet(w *writer, index uint64, cmd Command) ApplyResult {
	res := ApplyResult{Index: index}
	t := *cmd.ACLToken
	if t.AccessorID == acl.AnonymousTokenID {
		res.Err = &ACLError{Msg: "the anonymous token cannot be replaced"}
		return res
	}
	for _, id := range t.Policies {
		if id == acl.GlobalManagementPolicyID {
			continue
		}
		raw, err := w.txn.First(tableACLPolicies, indexID, id)
		must(err)
		if raw == nil {
			res.Err = &ACLError{Msg: fmt.Sprintf("no policy with ID %q", id)}
			return res
		}
	}
	if err := w.putToken(&t, index); err != nil {
		res.Err = err
		return res
	}
	res.Applied = true
	return res
}

func applyACLTokenDelete(w *writer, index uint64, cmd Command) ApplyResult {
	raw, err := w.txn.First(tableACLTokens, indexID, cmd.ACLID)
	must(err)
	if raw != nil {
		must(w.txn.Delete(tableACLTokens, raw))
		w.bumpACLIndex(index)
	}
	return ApplyResult{Index: index, Applied: true}
}

// putToken inserts or replaces t (keeping CreateIndex), refusing a secret
// hash held by another token.
func (w *writer) putToken(t *ACLToken, index uint64) error {
	raw, err := w.txn.First(tableACLTokens, indexSecret, t.SecretHash)
	must(err)
	if raw != nil && raw.(*ACLToken).AccessorID != t.AccessorID {
		return &ACLError{Msg: "a token with this SecretID already exists"}
	}
	t.CreateIndex, t.ModifyIndex = index, index
	raw, err = w.txn.First(tableACLTokens, indexID, t.AccessorID)
	must(err)
	if raw != nil {
		t.CreateIndex = raw.(*ACLToken).CreateIndex
		must(w.txn.Delete(tableACLTokens, raw))
	}
	must(w.txn.Insert(tableACLTokens, t))
	w.bumpACLIndex(index)
	return nil
}

func (w *writer) bumpACLIndex(index uint64) {
	if readIndexRow(w.txn, tableACLMeta, aclMetaIndex) < index {
		must(w.txn.Insert(tableACLMeta, &indexRow{Name: aclMetaIndex, Value: index}))
	}
}

// ACLIndex returns the highest Raft index that changed ACL state (0 if
// none did): resolvers cache by it.
func (v *View) ACLIndex() uint64 { return readIndexRow(v.txn, tableACLMeta, aclMetaIndex) }

// ACLBootstrapIndex returns the Raft index of the ACL bootstrap, 0 if it
// never happened.
func (v *View) ACLBootstrapIndex() uint64 { return readIndexRow(v.txn, tableACLMeta, aclMetaBootstrap) }

// ACLTokenBySecretHash returns the token whose SecretHash is h, or nil.
func (v *View) ACLTokenBySecretHash(h string) *ACLToken {
	raw, err := v.txn.First(tableACLTokens, indexSecret, h)
	must(err)
	if raw == nil {
		return nil
	}
	return raw.(*ACLToken)
}

// ACLToken returns the token with accessor ID id, or nil.
func (v *View) ACLToken(id string) *ACLToken {
	raw, err := v.txn.First(tableACLTokens, indexID, id)
	must(err)
	if raw == nil {
		return nil
	}
	return raw.(*ACLToken)
}

// ACLTokens returns every token in AccessorID order.
func (v *View) ACLTokens() []*ACLToken {
	it, err := v.txn.Get(tableACLTokens, indexID)
	must(err)
	var out []*ACLToken
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*ACLToken))
	}
	return out
}

// ACLPolicy returns the stored policy with id, or nil. The built-in
// global-management policy is not stored; see acl.GlobalManagementRules.
func (v *View) ACLPolicy(id string) *ACLPolicy {
	raw, err := v.txn.First(tableACLPolicies, indexID, id)
	must(err)
	if raw == nil {
		return nil
	}
	return raw.(*ACLPolicy)
}

// ACLPolicyByName returns the stored policy named name (any case), or nil.
func (v *View) ACLPolicyByName(name string) *ACLPolicy {
	raw, err := v.txn.First(tableACLPolicies, indexName, name)
	must(err)
	if raw == nil {
		return nil
	}
	return raw.(*ACLPolicy)
}

// ACLPolicies returns every stored policy in ID order.
func (v *View) ACLPolicies() []*ACLPolicy {
	it, err := v.txn.Get(tableACLPolicies, indexID)
	must(err)
	var out []*ACLPolicy
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*ACLPolicy))
	}
	return out
}

func (v *View) hashACL(h hash.Hash) {
	for _, p := range v.ACLPolicies() {
		js, _ := json.Marshal(p)
		hashString(h, "P")
		hashString(h, string(js))
	}
	for _, t := range v.ACLTokens() {
		js, _ := json.Marshal(t)
		hashString(h, "K")
		hashString(h, string(js))
	}
	it, err := v.txn.Get(tableACLMeta, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*indexRow)
		hashString(h, "A")
		hashString(h, r.Name)
		hashUint(h, r.Value)
	}
}

// writeACLRecords writes the ACL snapshot records (policies, tokens, meta
// rows, each in ID order) and returns how many it wrote of each.
func writeACLRecords(w io.Writer, v *View, rec []byte) (counts [3]uint64, err error) {
	write := func(typ byte, i int, p []byte, what string) error {
		rec = appendRecord(rec[:0], typ, p, nil)
		if _, err := w.Write(rec); err != nil {
			return fmt.Errorf("write %s: %w", what, err)
		}
		counts[i]++
		return nil
	}
	for _, p := range v.ACLPolicies() {
		js, err := json.Marshal(p)
		if err != nil {
			return counts, fmt.Errorf("encode policy %q: %w", p.ID, err)
		}
		if err := write(recACLPolicy, 0, js, "policy "+p.ID); err != nil {
			return counts, err
		}
	}
	for _, t := range v.ACLTokens() {
		js, err := json.Marshal(t)
		if err != nil {
			return counts, fmt.Errorf("encode token %q: %w", t.AccessorID, err)
		}
		if err := write(recACLToken, 1, js, "token "+t.AccessorID); err != nil {
			return counts, err
		}
	}
	it, err := v.txn.Get(tableACLMeta, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*indexRow)
		p := appendString(nil, r.Name)
		p = binary.AppendUvarint(p, r.Value)
		if err := write(recACLMeta, 2, p, "acl meta "+r.Name); err != nil {
			return counts, err
		}
	}
	return counts, nil
}

func (rs *restoreState) aclPolicy(p []byte) error {
	var pol ACLPolicy
	if err := decodeJSONExact(p, &pol); err != nil {
		return badSnapshot("acl policy: %v", err)
	}
	if pol.ID == "" || pol.Name == "" {
		return badSnapshot("acl policy without ID or name")
	}
	v := rs.w.view()
	if v.ACLPolicy(pol.ID) != nil || v.ACLPolicyByName(pol.Name) != nil {
		return badSnapshot("acl policy %q: duplicate", pol.ID)
	}
	must(rs.w.txn.Insert(tableACLPolicies, &pol))
	rs.nACL[0]++
	return nil
}

func (rs *restoreState) aclToken(p []byte) error {
	var t ACLToken
	if err := decodeJSONExact(p, &t); err != nil {
		return badSnapshot("acl token: %v", err)
	}
	if t.AccessorID == "" || len(t.SecretHash) != 64 {
		return badSnapshot("acl token without AccessorID or SecretHash")
	}
	v := rs.w.view()
	if v.ACLToken(t.AccessorID) != nil || v.ACLTokenBySecretHash(t.SecretHash) != nil {
		return badSnapshot("acl token %q: duplicate", t.AccessorID)
	}
	must(rs.w.txn.Insert(tableACLTokens, &t))
	rs.nACL[1]++
	return nil
}

func (rs *restoreState) aclMeta(p []byte) error {
	name, p, ok := readString(p)
	if !ok || (name != aclMetaBootstrap && name != aclMetaIndex) {
		return badSnapshot("acl meta: bad name")
	}
	val, n := binary.Uvarint(p)
	if n <= 0 || n != len(p) {
		return badSnapshot("acl meta %q: bad value", name)
	}
	if readIndexRow(rs.w.txn, tableACLMeta, name) != 0 {
		return badSnapshot("acl meta %q: duplicate", name)
	}
	must(rs.w.txn.Insert(tableACLMeta, &indexRow{Name: name, Value: val}))
	rs.nACL[2]++
	return nil
}
