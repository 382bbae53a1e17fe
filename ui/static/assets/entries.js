// entries.js: /ui/entries (every entry), /ui/entries/KIND (one kind) and
// /ui/entries/KIND/NAME (one entry's JSON, followed with a blocking query).

import { watch, KINDS, describeError, APIError } from './api.js';
import { fill, h, link, uiPath, empty, code, jsonView, timeText } from './dom.js';
import { pollKinds } from './services.js';

function unknownKind(main, kind) {
  fill(main, empty(`Unknown kind "${kind}".`, `The kinds are ${KINDS.join(', ')}.`));
}

export function entriesPage(main, { kind }, signal) {
  if (kind && !KINDS.includes(kind)) return unknownKind(main, kind);
  document.title = `${kind || 'Entries'} · chainstore`;
  const kinds = kind ? [kind] : KINDS;
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading entries…'));
  fill(main,
    h('div', { class: 'page-head' }, h('div', {},
      kind ? h('p', { class: 'crumbs' }, link('/ui/entries', 'Entries'), ' /') : null,
      h('h1', {}, kind || 'Config entries'))),
    body,
  );
  pollKinds(kinds, signal, (state, errors) => {
    const sections = [];
    let total = 0;
    for (const k of kinds) {
      const list = (state[k] || []).slice().sort((a, b) => a.Name.localeCompare(b.Name));
      total += list.length;
      const err = errors[k];
      sections.push(h('section', { class: 'kind-section' },
        h('h2', {}, h('span', { class: `kind kind-${k}` }, k), ' ', h('span', { class: 'muted' }, `${list.length}`)),
        err ? h('p', { class: 'notice notice-error' }, describeError(err)) : null,
        list.length
          ? h('ul', { class: 'entry-list' }, list.map((e) => h('li', {},
            link(uiPath('entries', k, e.Name), e.Name), h('span', { class: 'muted' }, ` @ ${e.ModifyIndex}`),
            k !== 'proxy-defaults' ? h('span', {}, ' · ', link(uiPath('chain', e.Name), 'chain')) : null)))
          : h('p', { class: 'muted' }, 'none')));
    }
    fill(body,
      total === 0 && Object.keys(errors).length === 0
        ? empty('No config entries yet.', h('span', {}, 'Write one with ', code('storectl put FILE'), ' (examples in ', code('scripts/examples'), ').'))
        : null,
      ...sections);
  });
}

export function entryPage(main, { kind, name }, signal) {
  if (!KINDS.includes(kind)) return unknownKind(main, kind);
  document.title = `${kind}/${name} · chainstore`;
  const live = h('span', { class: 'live', 'data-state': 'connecting' }, 'connecting…');
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading the entry…'));
  const notice = h('p', { class: 'notice notice-error', hidden: true });
  fill(main,
    h('div', { class: 'page-head' },
      h('div', {}, h('p', { class: 'crumbs' }, link('/ui/entries', 'Entries'), ' / ', link(uiPath('entries', kind), kind), ' /'),
        h('h1', {}, name)),
      live),
    h('p', { class: 'meta-text' }, kind === 'proxy-defaults'
      ? h('span', {}, 'Applies to every service: ', link('/ui/services', 'services'))
      : h('span', {}, 'Part of the chain of ', link(uiPath('chain', name), name), ' (and of every chain that routes or splits to it).')),
    notice, body,
  );
  watch(`/v1/config/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`, {
    signal,
    onData: (data, index) => {
      live.dataset.state = 'live';
      live.textContent = `live · index ${index} · updated ${timeText(new Date())}`;
      notice.hidden = true;
      fill(body, jsonView(data));
    },
    onError: (e, retryMs) => {
      if (e instanceof APIError && e.status === 404) {
        live.dataset.state = 'live';
        live.textContent = 'waiting for it to exist';
        notice.hidden = true;
        fill(body, empty(`No ${kind} entry named ${name}.`,
          h('span', {}, 'Write one with ', code('storectl put FILE'), '; this page shows it as soon as it exists.')));
        return;
      }
      live.dataset.state = 'error';
      live.textContent = retryMs ? `retrying in ${Math.ceil(retryMs / 1000)}s` : 'error';
      notice.hidden = false;
      notice.textContent = describeError(e);
    },
  });
}
