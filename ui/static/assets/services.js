// services.js: the services page (/ui/ and /ui/services) and the shared
// watcher of every kind's entry list.

import { get, sleep, KINDS, protocolOf, describeError, APIError } from './api.js';
import { fill, h, link, uiPath, empty, code } from './dom.js';

// LIST_POLL_MS is how often the list pages re-read the entry lists. They
// poll instead of holding one blocking query per kind: a browser opens at
// most 6 connections to one server, shared by all its tabs, and five held
// queries per tab would soon starve every other request.
export const LIST_POLL_MS = 2000;

// pollKinds reads the entry list of each kind in kinds (and, with
// withCatalog, /v1/catalog/services) every LIST_POLL_MS until signal aborts,
// and calls onChange(entries, errors, catalog, health) whenever anything
// differs from the previous round. entries is {kind: [entry]}, errors
// {kind: Error}; catalog is {service: [tag]}, or null when the server has no
// catalog API; health is {service: {total, passing}} for the first
// MAX_HEALTH services of the catalog (from /v1/health/service/NAME).
const MAX_HEALTH = 50;

// healthOf counts the instances of service and those whose checks all pass.
async function healthOf(service, signal) {
  const r = await get(`/v1/health/service/${encodeURIComponent(service)}`, { signal });
  const list = Array.isArray(r.data) ? r.data : [];
  const passing = list.filter((e) => (e.Checks || []).every((c) => c.Status === 'passing')).length;
  return { total: list.length, passing };
}

export function pollKinds(kinds, signal, onChange, withCatalog = false) {
  (async () => {
    let last = '';
    let catalogAPI = withCatalog;
    while (!signal.aborted) {
      const entries = {};
      const errors = {};
      let catalog = null;
      const health = {};
      const reads = kinds.map(async (kind) => {
        try {
          const r = await get(`/v1/config/${kind}`, { signal });
          entries[kind] = Array.isArray(r.data) ? r.data : [];
        } catch (e) {
          errors[kind] = e;
        }
      });
      if (catalogAPI) {
        reads.push((async () => {
          try {
            const r = await get('/v1/catalog/services', { signal });
            catalog = r.data && typeof r.data === 'object' ? r.data : {};
            await Promise.all(Object.keys(catalog).sort().slice(0, MAX_HEALTH).map(async (name) => {
              try {
                health[name] = await healthOf(name, signal);
              } catch {
                // no counts for this one this round
              }
            }));
          } catch (e) {
            // A server without the catalog API: stop asking.
            if (e instanceof APIError && (e.status === 404 || e.status === 405)) catalogAPI = false;
            else errors.catalog = e;
          }
        })());
      }
      await Promise.all(reads);
      if (signal.aborted) return;
      const key = JSON.stringify([entries, Object.entries(errors).map(([k, e]) => [k, e.message]), catalog, health]);
      if (key !== last) {
        last = key;
        onChange(entries, errors, catalog, health);
      }
      await sleep(LIST_POLL_MS, signal);
    }
  })();
}

// servicesOf collects service names from entries and the catalog.
function servicesOf(entries, catalog) {
  const names = new Map();
  const add = (name) => {
    if (!names.has(name)) names.set(name, { name, kinds: [], catalog: null });
    return names.get(name);
  };
  for (const kind of KINDS) {
    if (kind === 'proxy-defaults') continue;
    for (const e of entries[kind] || []) add(e.Name).kinds.push(kind);
  }
  for (const [name, tags] of Object.entries(catalog || {})) add(name).catalog = Array.isArray(tags) ? tags : [];
  return [...names.values()].sort((a, b) => a.name.localeCompare(b.name));
}

const SHORT = { 'service-defaults': 'defaults', 'service-router': 'router', 'service-splitter': 'splitter', 'service-resolver': 'resolver' };

// catalogCell says whether a service is in the catalog and how healthy its
// instances are.
function catalogCell(sv, catalog, hl) {
  if (sv.catalog === null) return h('span', { class: 'muted' }, catalog === null ? '?' : 'no');
  const tags = sv.catalog.length ? h('span', { class: 'muted' }, ` · tags ${sv.catalog.join(', ')}`) : null;
  if (!hl) return h('span', {}, 'registered', tags);
  const cls = hl.total > 0 && hl.passing === hl.total ? 'health-ok' : hl.passing === 0 ? 'health-bad' : 'health-warn';
  return h('span', {}, h('span', { class: `health ${cls}` },
    `${hl.total} instance${hl.total === 1 ? '' : 's'} · ${hl.passing} passing`), tags);
}

export function servicesPage(main, _params, signal) {
  document.title = 'Services · chainstore';
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading services…'));
  const global = h('p', { class: 'meta-text' });
  fill(main,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Services'))),
    global, body,
  );
  let entries = {};
  let entryErrors = {};
  let catalog = null; // null: the server has no catalog API (or it failed)
  let health = {};
  const draw = () => {
    const errs = Object.values(entryErrors);
    const pd = (entries['proxy-defaults'] || []).find((e) => e.Name === 'global');
    fill(global, pd
      ? h('span', {}, 'Services without service-defaults speak ', h('strong', {}, protocolOf('', entries).protocol),
        ' (', link(uiPath('entries', 'proxy-defaults', 'global'), 'proxy-defaults/global'), ').')
      : h('span', {}, 'No proxy-defaults/global: services without service-defaults speak tcp.'));
    if (Object.keys(entries).length === 0 && errs.length) {
      fill(body, empty('Cannot list the config entries.', describeError(errs[0])));
      return;
    }
    const svcs = servicesOf(entries, catalog);
    if (svcs.length === 0) {
      fill(body, empty('No services yet.',
        h('span', {}, 'Write a config entry with ', code('storectl put FILE'), ' (examples in ', code('scripts/examples'),
          '), or register an instance with ', code('storectl catalog register'), '. This page updates by itself.')));
      return;
    }
    const rows = svcs.map((sv) => {
      const p = protocolOf(sv.name, entries);
      return h('tr', { 'data-service': sv.name },
        h('td', {}, link(uiPath('chain', sv.name), sv.name)),
        h('td', {}, h('span', { class: `badge proto proto-${p.protocol}`, title: `from ${p.from}` }, p.protocol)),
        h('td', { class: 'kinds' }, sv.kinds.length
          ? sv.kinds.map((k) => link(uiPath('entries', k, sv.name), h('span', { class: `kind kind-${k}` }, SHORT[k])))
          : h('span', { class: 'muted' }, 'none')),
        h('td', { class: 'catalog' }, catalogCell(sv, catalog, health[sv.name])),
        h('td', {}, link(uiPath('chain', sv.name), 'chain →')),
      );
    });
    fill(body,
      errs.length ? h('p', { class: 'notice notice-error' }, describeError(errs[0])) : null,
      h('div', { class: 'table-scroll' }, h('table', { class: 'services' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Service'), h('th', {}, 'Protocol'), h('th', {}, 'Entries'), h('th', {}, 'Catalog'), h('th', {}, ''))),
        h('tbody', {}, rows))),
    );
  };
  pollKinds(KINDS, signal, (state, errors, cat, hl) => {
    entries = state;
    entryErrors = errors;
    catalog = cat;
    health = hl;
    draw();
  }, true);
}
