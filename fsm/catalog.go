package fsm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/chainstore/chainstore/catalog"
)

// The catalog's tables: the instances, and per service the highest Raft
// index that changed one of its instances (plus one row for the services
// list, named so no service can have its name: names hold no spaces). Index rows are never
// removed, so a service's index never goes backwards while the store lives.
const (
	tableInstances    = "instances"
	tableCatalogIndex = "catalog-index"
	indexService      = "service"

	// servicesIndexRow is the catalog-index row of the services list.
	servicesIndexRow = " services"
)

// catalogTables returns the schema of the catalog's tables.
func catalogTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableInstances: {
			Name: tableInstances,
			Indexes: map[string]*memdb.IndexSchema{
				indexID:      {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				indexService: {Name: indexService, Indexer: &memdb.StringFieldIndex{Field: "Service"}},
			},
		},
		tableCatalogIndex: {
			Name: tableCatalogIndex,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
	}
}

// ServiceSummary is one service of the catalog.
type ServiceSummary struct {
	Name              string
	Instances, Passed int
}

// Instance returns the instance with id, or nil.
func (s *Store) Instance(id string) *catalog.Stored {
	return s.View().Instance(id)
}

// Instances returns the instances of service sorted by ID, the service's
// index (the highest Raft index that changed one of its instances, 0 if
// none ever did) and a watch channel that fires when it changes (before
// the service's first write, a coarser channel that may also fire for
// other services). Never modify the returned instances.
func (s *Store) Instances(service string) (out []*catalog.Stored, index uint64, watch <-chan struct{}) {
	txn := s.db.Txn(false)
	ch, raw, err := txn.FirstWatch(tableCatalogIndex, indexID, service)
	must(err)
	if raw != nil {
		index = raw.(*indexRow).Value
	}
	out = (&View{txn: txn}).Instances(service)
	return out, index, ch
}

// Services returns the services with at least one instance, sorted by
// name, the index of the services list and a watch channel that fires on
// any catalog write.
func (s *Store) Services() (out []ServiceSummary, index uint64, watch <-chan struct{}) {
	txn := s.db.Txn(false)
	ch, raw, err := txn.FirstWatch(tableCatalogIndex, indexID, servicesIndexRow)
	must(err)
	if raw != nil {
		index = raw.(*indexRow).Value
	}
	it, err := txn.Get(tableInstances, indexService)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		in := raw.(*catalog.Stored)
		if len(out) == 0 || out[len(out)-1].Name != in.Service {
			out = append(out, ServiceSummary{Name: in.Service})
		}
		sum := &out[len(out)-1]
		sum.Instances++
		if in.Status == catalog.Passing {
			sum.Passed++
		}
	}
	return out, index, ch
}

// Instance returns the instance with id, or nil.
func (v *View) Instance(id string) *catalog.Stored {
	raw, err := v.txn.First(tableInstances, indexID, id)
	must(err)
	if raw == nil {
		return nil
	}
	return raw.(*catalog.Stored)
}

// Instances returns the instances of service sorted by ID.
func (v *View) Instances(service string) []*catalog.Stored {
	it, err := v.txn.Get(tableInstances, indexService, service)
	must(err)
	var out []*catalog.Stored
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*catalog.Stored))
	}
	slices.SortFunc(out, func(a, b *catalog.Stored) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// AllInstances returns every instance sorted by ID.
func (v *View) AllInstances() []*catalog.Stored {
	it, err := v.txn.Get(tableInstances, indexID)
	must(err)
	var out []*catalog.Stored
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*catalog.Stored))
	}
	return out
}

// applyRegister handles OpRegister: validate (defensively: the leader
// validated it), refuse an ID held by another service, keep the health of
// an unchanged check, write.
func (f *FSM) applyRegister(w *writer, index uint64, cmd Command) ApplyResult {
	res := ApplyResult{Index: index}
	in := cmd.Instance
	if in == nil {
		res.Err = fmt.Errorf("apply register at index %d without instance: %w", index, ErrMalformedCommand)
		return res
	}
	if err := in.Validate(in.Datacenter); err != nil {
		res.Err = err
		return res
	}
	st := &catalog.Stored{Instance: *in, CreateIndex: index, ModifyIndex: index}
	st.Status, st.Output = in.InitialStatus()
	if old := w.view().Instance(in.ID); old != nil {
		if old.Service != in.Service {
			res.Err = &catalog.ValidationError{ID: in.ID, Field: "ID",
				Msg: fmt.Sprintf("already registered for service %q; deregister it first", old.Service)}
			return res
		}
		st.CreateIndex = old.CreateIndex
		if catalog.SameCheck(&old.Instance, in) {
			st.Status, st.Output = old.Status, old.Output
		}
	}
	w.putInstance(st, index)
	res.Applied = true
	return res
}

// applyDeregister handles OpDeregister.
func applyDeregister(w *writer, index uint64, cmd Command) ApplyResult {
	if old := w.view().Instance(cmd.InstanceID); old != nil {
		must(w.txn.Delete(tableInstances, old))
		w.bumpService(old.Service, index)
	}
	return ApplyResult{Index: index, Applied: true}
}

// applyCheck handles OpCheck.
func applyCheck(w *writer, index uint64, cmd Command) ApplyResult {
	res := ApplyResult{Index: index}
	old := w.view().Instance(cmd.InstanceID)
	switch {
	case old == nil:
		res.Err = fmt.Errorf("check of %q: %w", cmd.InstanceID, ErrInstanceNotFound)
		return res
	case old.TTL == 0:
		res.Err = &catalog.ValidationError{ID: old.ID, Field: "TTL", Msg: "the instance has no TTL check to update"}
		return res
	case len(cmd.Output) > catalog.MaxOutputLen:
		res.Err = &catalog.ValidationError{ID: old.ID, Field: "Note", Msg: fmt.Sprintf("longer than %d bytes", catalog.MaxOutputLen)}
		return res
	}
	st := *old
	st.Status, st.Output, st.ModifyIndex = cmd.Status, cmd.Output, index
	w.putInstance(&st, index)
	res.Applied = true
	return res
}

// applyCheckExpire handles OpCheckExpire: the leader saw no update within
// the TTL of the check as of ModifyIndex CASIndex.
func applyCheckExpire(w *writer, index uint64, cmd Command) ApplyResult {
	res := ApplyResult{Index: index}
	old := w.view().Instance(cmd.InstanceID)
	if old == nil || old.ModifyIndex != cmd.CASIndex || old.Status == catalog.Critical || old.TTL == 0 {
		return res
	}
	st := *old
	st.Status, st.ModifyIndex = catalog.Critical, index
	st.Output = fmt.Sprintf("TTL expired: no check update within %s", old.TTL)
	w.putInstance(&st, index)
	res.Applied = true
	return res
}

// putInstance inserts or replaces st and bumps its service's index.
func (w *writer) putInstance(st *catalog.Stored, index uint64) {
	must(w.txn.Insert(tableInstances, st))
	w.bumpService(st.Service, index)
}

// bumpService raises the index rows of service and of the services list
// to index and records the service as changed.
func (w *writer) bumpService(service string, index uint64) {
	for _, name := range []string{service, servicesIndexRow} {
		if readIndexRow(w.txn, tableCatalogIndex, name) < index {
			must(w.txn.Insert(tableCatalogIndex, &indexRow{Name: name, Value: index}))
		}
	}
	if w.services == nil {
		w.services = make(map[string]struct{})
	}
	w.services[service] = struct{}{}
}

// changedServices returns the services whose instances changed, sorted.
func (w *writer) changedServices() []string {
	if len(w.services) == 0 {
		return nil
	}
	out := make([]string, 0, len(w.services))
	for s := range w.services {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// hashCatalog adds the catalog's tables to a store hash.
func (v *View) hashCatalog(h hash.Hash) {
	for _, st := range v.AllInstances() {
		js, err := json.Marshal(st)
		if err != nil {
			js = []byte("!" + err.Error())
		}
		hashString(h, "N")
		hashString(h, string(js))
	}
	it, err := v.txn.Get(tableCatalogIndex, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*indexRow)
		hashString(h, "C")
		hashString(h, r.Name)
		hashUint(h, r.Value)
	}
}

// writeCatalogRecords writes the catalog's snapshot records (instances in
// ID order, then index rows in name order) and returns their counts.
func writeCatalogRecords(w io.Writer, v *View, rec []byte) (nInstances, nIndexes uint64, err error) {
	for _, st := range v.AllInstances() {
		js, err := json.Marshal(st)
		if err != nil {
			return 0, 0, fmt.Errorf("encode instance %q: %w", st.ID, err)
		}
		rec = appendRecord(rec[:0], recInstance, js, nil)
		if _, err := w.Write(rec); err != nil {
			return 0, 0, fmt.Errorf("write instance %q: %w", st.ID, err)
		}
		nInstances++
	}
	it, err := v.txn.Get(tableCatalogIndex, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*indexRow)
		p := appendString(nil, r.Name)
		p = binary.AppendUvarint(p, r.Value)
		rec = appendRecord(rec[:0], recCatIndex, p, nil)
		if _, err := w.Write(rec); err != nil {
			return 0, 0, fmt.Errorf("write catalog index %q: %w", r.Name, err)
		}
		nIndexes++
	}
	return nInstances, nIndexes, nil
}

// instance restores one instance record.
func (rs *restoreState) instance(p []byte) error {
	var st catalog.Stored
	if err := decodeJSONExact(p, &st); err != nil {
		return fmt.Errorf("instance: %w: %w", ErrBadSnapshot, err)
	}
	if err := st.Validate(st.Datacenter); err != nil {
		return fmt.Errorf("instance: %w: %w", ErrBadSnapshot, err)
	}
	if !st.Status.Valid() || st.CreateIndex == 0 || st.ModifyIndex < st.CreateIndex {
		return badSnapshot("instance %q: bad status or indexes", st.ID)
	}
	if rs.w.view().Instance(st.ID) != nil {
		return badSnapshot("duplicate instance %q", st.ID)
	}
	must(rs.w.txn.Insert(tableInstances, &st))
	rs.nInstances++
	return nil
}

// catalogIndex restores one catalog index row.
func (rs *restoreState) catalogIndex(p []byte) error {
	name, p, ok := readString(p)
	if !ok || name == "" {
		return badSnapshot("catalog index: bad name")
	}
	val, n := binary.Uvarint(p)
	if n <= 0 || n != len(p) {
		return badSnapshot("catalog index %q: bad value", name)
	}
	if readIndexRow(rs.w.txn, tableCatalogIndex, name) != 0 {
		return badSnapshot("catalog index %q: duplicate", name)
	}
	must(rs.w.txn.Insert(tableCatalogIndex, &indexRow{Name: name, Value: val}))
	rs.nCatIndexes++
	return nil
}
