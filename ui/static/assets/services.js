// services.js: the services page (/ui/ and /ui/services) and the shared
// watcher of every kind's entry list.

import { watch, KINDS, protocolOf, describeError, APIError } from './api.js';
import { h, link, uiPath, empty, code } from './dom.js';

// watchKinds follows the entry list of each kind in kinds (blocking queries,
// one per kind) and calls onChange({kind: [entry]}, errors) after every change.
export function watchKinds(kinds, signal, onChange) {
  const state = {};
  const errors = {};
  let queued = false;
  const changed = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      if (!signal.aborted) onChange(state, errors);
    });
  };
  for (const kind of kinds) {
    watch(`/v1/config/${kind}`, {
      signal,
      onData: (data) => {
        state[kind] = Array.isArray(data) ? data : [];
        delete errors[kind];
        changed();
      },
      onError: (e) => {
        errors[kind] = e;
        changed();
      },
    });
  }
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

export function servicesPage(main, _params, signal) {
  document.title = 'Services · chainstore';
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading services…'));
  const global = h('p', { class: 'meta-text' });
  main.replaceChildren(
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Services'))),
    global, body,
  );
  let entries = {};
  let entryErrors = {};
  let catalog = null; // null: not known (yet, or the server has no catalog API)
  const draw = () => {
    const errs = Object.values(entryErrors);
    const pd = (entries['proxy-defaults'] || []).find((e) => e.Name === 'global');
    global.replaceChildren(pd
      ? h('span', {}, 'Services without service-defaults speak ', h('strong', {}, protocolOf('', entries).protocol),
        ' (', link(uiPath('entries', 'proxy-defaults', 'global'), 'proxy-defaults/global'), ').')
      : h('span', {}, 'No proxy-defaults/global: services without service-defaults speak tcp.'));
    if (Object.keys(entries).length === 0 && errs.length) {
      body.replaceChildren(empty('Cannot list the config entries.', describeError(errs[0])));
      return;
    }
    const svcs = servicesOf(entries, catalog);
    if (svcs.length === 0) {
      body.replaceChildren(empty('No services yet.',
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
        h('td', {}, sv.catalog === null ? h('span', { class: 'muted' }, catalog === null ? '?' : 'no')
          : h('span', {}, 'registered', sv.catalog.length ? h('span', { class: 'muted' }, ` · tags ${sv.catalog.join(', ')}`) : '')),
        h('td', {}, link(uiPath('chain', sv.name), 'chain →')),
      );
    });
    body.replaceChildren(
      errs.length ? h('p', { class: 'notice notice-error' }, describeError(errs[0])) : null,
      h('div', { class: 'table-scroll' }, h('table', { class: 'services' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Service'), h('th', {}, 'Protocol'), h('th', {}, 'Entries'), h('th', {}, 'Catalog'), h('th', {}, ''))),
        h('tbody', {}, rows))),
    );
  };
  watchKinds(KINDS, signal, (state, errors) => {
    entries = state;
    entryErrors = errors;
    draw();
  });
  // The catalog is optional: a server without /v1/catalog/services answers
  // 404, and the column then says "?".
  const cat = new AbortController();
  signal.addEventListener('abort', () => cat.abort(), { once: true });
  watch('/v1/catalog/services', {
    signal: cat.signal,
    onData: (data) => {
      catalog = data && typeof data === 'object' ? data : {};
      draw();
    },
    onError: (e) => {
      if (e instanceof APIError && (e.status === 404 || e.status === 405)) cat.abort();
    },
  });
}
