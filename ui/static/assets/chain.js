// chain.js: the page /ui/chain/SERVICE. It follows the service's compiled
// chain with a blocking query on /v1/discovery-chain/SERVICE and redraws the
// graph each time X-Consul-Index moves, without reloading the page.

import { watch, listAll, describeError, APIError } from './api.js';
import { fill, h, link, uiPath, empty, code, jsonView, timeText } from './dom.js';
import { render } from './graph.js';

// NARROW_BELOW: a graph wider than its box is stacked (graph.js, layoutNarrow)
// when the box is narrower than this (phones); wider boxes scroll sideways.
const NARROW_BELOW = 560;
const SERVICE_KINDS = ['service-defaults', 'service-router', 'service-splitter', 'service-resolver'];

// entriesUsed lists the existing entries the chain's nodes come from.
function entriesUsed(chain, entries) {
  const want = [['proxy-defaults', 'global'], ['service-defaults', chain.ServiceName], ['service-router', chain.ServiceName]];
  for (const n of Object.values(chain.Nodes || {})) {
    if (n.Type === 'splitter') want.push(['service-splitter', n.Name]);
  }
  for (const t of Object.values(chain.Targets || {})) {
    want.push(['service-defaults', t.Service], ['service-resolver', t.Service]);
  }
  want.push(['service-resolver', chain.ServiceName]);
  const seen = new Set();
  const out = [];
  for (const [kind, name] of want) {
    const key = `${kind}/${name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const e = (entries[kind] || []).find((x) => x.Name === name);
    if (e) out.push({ kind, name, index: e.ModifyIndex });
  }
  return out;
}

function hasOwnEntries(service, entries) {
  return SERVICE_KINDS.some((k) => (entries[k] || []).some((e) => e.Name === service));
}

function legend() {
  const item = (cls, text) => h('span', { class: `legend-item ${cls}` }, h('span', { class: 'swatch' }), text);
  return h('div', { class: 'legend', 'aria-hidden': 'true' },
    item('router', 'router: routes by match'),
    item('splitter', 'splitter: weighted legs'),
    item('resolver', 'resolver: subset, timeout, failover'),
    item('target', 'target: instances traffic lands on'),
    item('failover-line', 'failover'),
  );
}

export function chainPage(main, { service }, signal) {
  document.title = `${service} · chain · chainstore`;
  const live = h('span', { class: 'live', 'data-state': 'connecting' }, 'connecting…');
  const meta = h('div', { class: 'meta' });
  const notice = h('div', { class: 'notice', hidden: true });
  const graph = h('div', { class: 'graph-scroll', tabindex: '0', 'aria-label': 'Chain graph (scrolls sideways)' },
    h('p', { class: 'loading' }, `Loading the chain of ${service}…`));
  const used = h('div', { class: 'used' });
  const raw = h('div', { class: 'raw' });
  fill(main,
    h('div', { class: 'page-head' },
      h('div', {}, h('p', { class: 'crumbs' }, link('/ui/services', 'Services'), ' / chain'),
        h('h1', {}, service)),
      live),
    meta, notice, graph, legend(),
    h('div', { class: 'cols' },
      h('section', {}, h('h2', {}, 'Entries used'), used),
      h('section', {}, h('h2', {}, 'Compiled chain'), raw)),
  );

  let prev = null;
  let entries = {};
  let seq = 0;
  let haveChain = false;

  const showNotice = (kind, ...content) => {
    notice.hidden = false;
    notice.className = `notice notice-${kind}`;
    fill(notice, ...content);
  };

  // drawGraph draws the chain left to right, or stacked when the screen is
  // too narrow for that; markChanges flags the nodes that differ from the
  // previous drawing.
  let last = null;
  const drawGraph = (chain, markChanges) => {
    const avail = graph.clientWidth - 18;
    const before = markChanges ? prev : null;
    let out = render(chain, entries, before);
    if (out.model.width > avail && avail < NARROW_BELOW) out = render(chain, entries, before, avail);
    prev = out.signatures;
    last = chain;
    fill(graph, out.svg);
  };
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (last && !signal.aborted) drawGraph(last, false); }, 150);
  }, { signal });

  const draw = (chain, index) => {
    drawGraph(chain, true);
    haveChain = true;
    fill(meta,
      h('span', { class: `badge proto proto-${chain.Protocol}` }, chain.Protocol || 'tcp'),
      h('span', { class: 'badge' }, `datacenter ${chain.Datacenter}`),
      h('span', { class: 'badge' }, `namespace ${chain.Namespace}`),
      chain.Default ? h('span', { class: 'badge badge-muted' }, 'default chain') : null,
      h('span', { class: 'meta-text' }, `starts at ${chain.StartNode}`),
    );
    if (chain.Default && !hasOwnEntries(service, entries)) {
      const t = Object.keys(chain.Targets || {})[0] || `${service}.default.${chain.Datacenter}`;
      showNotice('empty',
        h('strong', {}, `No config entries for ${service} yet: `), 'write one with ', code('storectl put FILE'),
        ' (examples in ', code('scripts/examples'), `). Until then ${service} uses the default chain: all of its traffic goes to ${t}.`);
    } else {
      notice.hidden = true;
    }
    const list = entriesUsed(chain, entries);
    fill(used, list.length
      ? h('ul', { class: 'entry-list' }, list.map((e) => h('li', {},
        h('span', { class: `kind kind-${e.kind}` }, e.kind), ' ', link(uiPath('entries', e.kind, e.name), e.name),
        e.index ? h('span', { class: 'muted' }, ` @ ${e.index}`) : null)))
      : h('p', { class: 'muted' }, 'None: the chain is built from defaults.'));
    fill(raw, h('details', {}, h('summary', {}, `{"Chain": …} at index ${index}`), jsonView({ Chain: chain })));
    live.dataset.state = 'live';
    live.textContent = `live · index ${index} · updated ${timeText(new Date())}`;
  };

  watch(`/v1/discovery-chain/${encodeURIComponent(service)}`, {
    signal,
    onData: async (data, index) => {
      const my = ++seq;
      const chain = data && data.Chain;
      if (!chain) {
        showNotice('error', `The server's answer has no "Chain" (index ${index}).`);
        return;
      }
      // Entries add redirects and links; when they cannot be read, the
      // graph is drawn with the last ones read.
      const r = await listAll(signal);
      if (signal.aborted || my !== seq) return;
      if (!r.error) entries = r.entries;
      draw(chain, index);
    },
    onError: (e, retryMs) => {
      live.dataset.state = 'error';
      live.textContent = retryMs ? `retrying in ${Math.ceil(retryMs / 1000)}s` : 'waiting';
      if (e instanceof APIError && e.status === 500) {
        showNotice('error', h('strong', {}, `The chain of ${service} does not compile: `), e.message,
          h('br'), 'Fix or delete the entry named in the message (', code('storectl put FILE'), ' or ', code('storectl delete KIND NAME'), ').');
      } else {
        showNotice('error', describeError(e), haveChain ? ' The graph below is the last one received.' : '');
      }
      if (!haveChain) fill(graph, empty('No chain to draw yet.', 'It appears here as soon as the server answers.'));
    },
  });
}
