package rpc

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// Listing limits (docs/design.md, "Listing"). A List response is bounded
// in bytes and entries whatever the request says, and the server never
// holds more than one response's worth of encoded entries.
const (
	// DefaultListPageBytes caps the encoded entries of one page.
	DefaultListPageBytes = 4 << 20
	// DefaultMaxListPageSize caps the entries of one page.
	DefaultMaxListPageSize = 1000
	// DefaultMaxLegacyListBytes caps a legacy (unpaged) List response,
	// below the 64 MiB that clients accept by default.
	DefaultMaxLegacyListBytes = 48 << 20
)

// ListLimits bounds List responses.
type ListLimits struct {
	// PageBytes caps the encoded entries of one page (a page always holds
	// at least one entry).
	PageBytes int
	// MaxPageSize caps the entries of one page.
	MaxPageSize int
	// MaxLegacyBytes caps the response to a request that asks for no
	// paging; a larger list fails with LIST_TOO_LARGE.
	MaxLegacyBytes int
}

// DefaultListLimits returns the defaults above.
func DefaultListLimits() ListLimits {
	return ListLimits{PageBytes: DefaultListPageBytes, MaxPageSize: DefaultMaxListPageSize, MaxLegacyBytes: DefaultMaxLegacyListBytes}
}

// Validate reports the first invalid field.
func (l ListLimits) Validate() error {
	if l.PageBytes <= 0 || l.MaxPageSize <= 0 || l.MaxLegacyBytes <= 0 {
		return fmt.Errorf("list limits must be positive: %+v", l)
	}
	return nil
}

// ErrListTooLarge means a legacy (unpaged) List would exceed
// ListLimits.MaxLegacyBytes.
var ErrListTooLarge = errors.New("list too large for one response")

// errBadPageToken: a page token that this server did not issue for this
// kind.
var errBadPageToken = errors.New("invalid page_token")

// pageTokenPrefix versions the token format.
const pageTokenPrefix = "p1\x00"

// encodePageToken returns the opaque token of the page after key.
func encodePageToken(k chain.Key) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + string(k.Kind) + "\x00" + k.Name))
}

// decodePageToken returns the key a token continues after. kind is the
// request's (normalized) kind; a token from another kind is refused.
func decodePageToken(tok string, kind chain.Kind) (chain.Key, error) {
	if tok == "" {
		return chain.Key{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), pageTokenPrefix) {
		return chain.Key{}, &chain.DecodeError{Msg: errBadPageToken.Error() + ": not a token this server issued"}
	}
	k, name, ok := strings.Cut(strings.TrimPrefix(string(b), pageTokenPrefix), "\x00")
	if !ok || name == "" || (kind != "" && chain.Kind(k) != kind) {
		return chain.Key{}, &chain.DecodeError{Msg: errBadPageToken.Error() + ": issued for another kind or damaged"}
	}
	return chain.Key{Kind: chain.Kind(k), Name: name}, nil
}

// isPaged reports whether req uses any paging field (a newer client).
func isPaged(req *chainstorev1.ListRequest) bool {
	return req.GetPageSize() > 0 || req.GetPageToken() != "" || req.GetNamesOnly()
}

// listPage builds one page of req from store (see entries.proto).
// keep filters the entries (ACLs: only what the token may read).
func listPage(store *fsm.Store, kind chain.Kind, req *chainstorev1.ListRequest, lim ListLimits, keep func(*fsm.StoredEntry) bool) (*chainstorev1.ListResponse, uint64, <-chan struct{}, error) {
	norm := chain.Kind(strings.ToLower(string(kind)))
	after, err := decodePageToken(req.GetPageToken(), norm)
	if err != nil {
		return nil, 0, nil, err
	}
	size := lim.MaxPageSize
	if n := int(req.GetPageSize()); n > 0 && n < size {
		size = n
	}
	resp := &chainstorev1.ListResponse{}
	bytes := 0
	var last chain.Key
	more := false
	var encErr error
	idx, watch := store.ListAfter(kind, after, func(se *fsm.StoredEntry) bool {
		if !keep(se) {
			return true
		}
		if len(resp.Entries) == size {
			more = true
			return false
		}
		e := &chainstorev1.StoredEntry{Kind: string(se.Entry.GetKind()), Name: se.Entry.GetName(),
			CreateIndex: se.CreateIndex, ModifyIndex: se.ModifyIndex}
		n := len(e.Name) + len(e.Kind) + 32
		if !req.GetNamesOnly() {
			data, err := chain.EncodeEntry(se.Entry)
			if err != nil {
				encErr = fmt.Errorf("encode entry %s: %w", se.Key(), err)
				return false
			}
			e.Entry = data
			n += len(data)
		}
		if len(resp.Entries) > 0 && bytes+n > lim.PageBytes {
			more = true
			return false
		}
		bytes += n
		resp.Entries = append(resp.Entries, e)
		last = se.Key()
		return true
	})
	if encErr != nil {
		return nil, 0, nil, encErr
	}
	if more {
		resp.NextPageToken = encodePageToken(last)
	}
	return resp, idx, watch, nil
}

// listLegacy builds the one-response list of an unpaged request, sorted by
// name, failing with ErrListTooLarge as soon as it passes MaxLegacyBytes.
func listLegacy(store *fsm.Store, kind chain.Kind, lim ListLimits, keep func(*fsm.StoredEntry) bool) (*chainstorev1.ListResponse, uint64, <-chan struct{}, error) {
	resp := &chainstorev1.ListResponse{}
	bytes := 0
	var stop error
	idx, watch := store.ListAfter(kind, chain.Key{}, func(se *fsm.StoredEntry) bool {
		if !keep(se) {
			return true
		}
		data, err := chain.EncodeEntry(se.Entry)
		if err != nil {
			stop = fmt.Errorf("encode entry %s: %w", se.Key(), err)
			return false
		}
		bytes += len(data) + 64
		if bytes > lim.MaxLegacyBytes {
			stop = fmt.Errorf("listing %q needs more than %d bytes in one response (%d entries so far): ask for pages (ListRequest.page_size; storectl and api.Client.ListPages do): %w",
				kind, lim.MaxLegacyBytes, len(resp.Entries), ErrListTooLarge)
			return false
		}
		resp.Entries = append(resp.Entries, &chainstorev1.StoredEntry{
			Kind: string(se.Entry.GetKind()), Name: se.Entry.GetName(), Entry: data,
			CreateIndex: se.CreateIndex, ModifyIndex: se.ModifyIndex,
		})
		return true
	})
	if stop != nil {
		return nil, 0, nil, stop
	}
	sort.Slice(resp.Entries, func(i, j int) bool { return resp.Entries[i].Name < resp.Entries[j].Name })
	return resp, idx, watch, nil
}
