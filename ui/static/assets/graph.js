// graph.js: draws a compiled discovery chain (Consul 1.6 JSON: StartNode,
// Nodes, Targets) as an SVG graph. Each chain node and each target is a box
// whose rows are SVG <text>; columns go left to right by depth (router,
// splitter, resolver, target, leaving out the kinds the chain lacks); edges
// leave from the row they belong to (a route, a split leg, a failover).

import { s, uiPath } from './dom.js';

const TYPE_COLUMN = { router: 0, splitter: 1, resolver: 2, target: 3 };
const MARGIN = 16;
const COL_GAP = 60;
const NARROW_MAX_W = 440;
const LANE_W = 46; // narrow layout: room right of the nodes for the edges
const NODE_GAP = 16;
const HEADER_H = 40;
const ROW_H = 20;
const ROW_SUB_H = 34;
const PAD_X = 12;
const PAD_BOTTOM = 8;
const MIN_W = 170;
const MAX_W = 300;
const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const FONT_BOLD = '600 12px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const FONT_TITLE = '600 13px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const FONT_SUB = '11px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';

let canvas;
function measure(text, font) {
  canvas = canvas || document.createElement('canvas');
  const ctx = canvas.getContext('2d');
  ctx.font = font;
  return ctx.measureText(text).width;
}

// fit shortens text with an ellipsis to at most width pixels.
function fit(text, font, width) {
  if (measure(text, font) <= width) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (measure(text.slice(0, mid) + '…', font) <= width) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, lo) + '…';
}

// --- describing the chain -------------------------------------------------

function stringMatch(kind, m) {
  const not = m.Invert ? 'not ' : '';
  if (m.Present) return `${kind} ${m.Name} ${not}present`;
  if (m.Exact !== undefined && m.Exact !== '') return `${kind} ${m.Name} ${m.Invert ? '≠' : '='} ${m.Exact}`;
  if (m.Prefix) return `${kind} ${m.Name} ${not}starts ${m.Prefix}`;
  if (m.Suffix) return `${kind} ${m.Name} ${not}ends ${m.Suffix}`;
  if (m.Regex) return `${kind} ${m.Name} ${not}~ ${m.Regex}`;
  return `${kind} ${m.Name}`;
}

// matchText describes a route's match in one line.
export function matchText(def) {
  const http = def && def.Match && def.Match.HTTP;
  if (!http) return 'any request';
  const parts = [];
  if (http.PathExact) parts.push(`PathExact ${http.PathExact}`);
  if (http.PathPrefix) parts.push(`PathPrefix ${http.PathPrefix}`);
  if (http.PathRegex) parts.push(`PathRegex ${http.PathRegex}`);
  for (const hd of http.Header || []) parts.push(stringMatch('Header', hd));
  for (const q of http.QueryParam || []) parts.push(stringMatch('Query', q));
  if (http.Methods && http.Methods.length) parts.push(`Methods ${http.Methods.join(',')}`);
  return parts.length ? parts.join(' & ') : 'any request';
}

function destText(def, chainService) {
  const d = (def && def.Destination) || {};
  const parts = [];
  let to = d.Service || chainService;
  if (d.ServiceSubset) to += ` subset ${d.ServiceSubset}`;
  if (d.Namespace) to += ` ns ${d.Namespace}`;
  parts.push(`to ${to}`);
  if (d.PrefixRewrite) parts.push(`rewrite ${d.PrefixRewrite}`);
  if (d.RequestTimeout && d.RequestTimeout !== '0s') parts.push(`timeout ${d.RequestTimeout}`);
  if (d.NumRetries) parts.push(`${d.NumRetries} retries`);
  if (d.RetryOnConnectFailure) parts.push('retry on connect failure');
  if (d.RetryOnStatusCodes && d.RetryOnStatusCodes.length) parts.push(`retry on ${d.RetryOnStatusCodes.join(',')}`);
  return parts.join(', ');
}

function isCatchAll(route, chainService, last) {
  const def = route.Definition || {};
  const http = (def.Match && def.Match.HTTP) || {};
  const d = def.Destination || {};
  return last && http.PathPrefix === '/' && Object.keys(http).length === 1 &&
    d.Service === chainService && Object.keys(d).length === 1;
}

function weightText(w) {
  const n = Number(w || 0);
  return `${Number.isInteger(n) ? n : n.toFixed(2).replace(/0+$/, '')}%`;
}

function targetSubsetText(t) {
  const sub = t.Subset || {};
  let text = t.ServiceSubset ? `${t.ServiceSubset}: ` : '';
  text += sub.Filter ? sub.Filter : 'all instances';
  if (sub.OnlyPassing) text += ', only passing';
  return text;
}

// reachedServices is the set of service names the chain's routers and
// splitters send traffic to, by the entries (used to attribute redirects).
function reachedServices(chain, entries) {
  const reached = new Set([chain.ServiceName]);
  for (const node of Object.values(chain.Nodes || {})) {
    for (const r of node.Routes || []) {
      const d = (r.Definition && r.Definition.Destination) || {};
      if (d.Service) reached.add(d.Service);
    }
  }
  const splitters = entries['service-splitter'] || [];
  for (let changed = true; changed;) {
    changed = false;
    for (const sp of splitters) {
      if (!reached.has(sp.Name)) continue;
      for (const leg of sp.Splits || []) {
        const svc = leg.Service || sp.Name;
        if (!reached.has(svc)) {
          reached.add(svc);
          changed = true;
        }
      }
    }
  }
  return reached;
}

// redirectsTo lists the resolver entries whose redirect lands on target t
// and that the chain reaches.
function redirectsTo(t, entries, reached) {
  const out = [];
  for (const e of entries['service-resolver'] || []) {
    const r = e.Redirect;
    if (!r || !reached.has(e.Name)) continue;
    const svc = r.Service || e.Name;
    if (svc !== t.Service) continue;
    if (r.ServiceSubset && r.ServiceSubset !== (t.ServiceSubset || '')) continue;
    if (r.Datacenter && r.Datacenter !== t.Datacenter) continue;
    if (e.Name === t.Service && !r.ServiceSubset && !r.Datacenter && !r.Namespace) continue;
    out.push(e.Name);
  }
  return out;
}

function hasEntry(entries, kind, name) {
  return (entries[kind] || []).some((e) => e.Name === name);
}

// buildModel turns a compiled chain into boxes and edges (no positions yet).
// entries ({kind: [entry]}, possibly empty) adds redirects and entry links.
export function buildModel(chain, entries = {}) {
  const nodes = new Map();
  const edges = [];
  const targets = chain.Targets || {};
  const reached = reachedServices(chain, entries);
  const svc = chain.ServiceName;

  const targetNode = (id) => {
    const key = `target:${id}`;
    if (nodes.has(key)) return key;
    const t = targets[id] || { ID: id };
    const rows = [];
    if (t.Service) rows.push({ strong: 'service', text: t.Service });
    if (t.ServiceSubset) rows.push({ strong: 'subset', text: t.ServiceSubset });
    if (t.Datacenter) rows.push({ strong: 'datacenter', text: t.Datacenter });
    if (t.MeshGateway && t.MeshGateway.Mode) rows.push({ strong: 'mesh gateway', text: t.MeshGateway.Mode });
    if (t.External) rows.push({ strong: 'external SNI', text: t.SNI || '' });
    nodes.set(key, {
      id: key, type: 'target', title: id, rows, order: nodes.size,
      href: t.Service && t.Service !== svc ? uiPath('chain', t.Service) : null,
      hrefTitle: t.Service && t.Service !== svc ? `Open the chain of ${t.Service}` : null,
    });
    return key;
  };

  const visit = (key) => {
    if (nodes.has(key)) return key;
    const n = (chain.Nodes || {})[key];
    if (!n) {
      nodes.set(key, { id: key, type: 'missing', title: key, rows: [{ text: 'node missing from the chain', cls: 'warn' }], order: nodes.size });
      return key;
    }
    const node = { id: key, type: n.Type || 'unknown', title: n.Name || key, rows: [], order: nodes.size };
    nodes.set(key, node);
    if (n.Type === 'router') {
      if (hasEntry(entries, 'service-router', n.Name)) node.href = uiPath('entries', 'service-router', n.Name);
      const routes = n.Routes || [];
      routes.forEach((r, i) => {
        const catchAll = isCatchAll(r, svc, i === routes.length - 1);
        node.rows.push({
          text: matchText(r.Definition) + (catchAll ? ' (default)' : ''),
          sub: destText(r.Definition, svc),
          cls: catchAll ? 'muted' : '',
        });
        edges.push({ from: key, row: i, to: visit(r.NextNode), cls: 'route' });
      });
    } else if (n.Type === 'splitter') {
      if (hasEntry(entries, 'service-splitter', n.Name)) node.href = uiPath('entries', 'service-splitter', n.Name);
      (n.Splits || []).forEach((sp, i) => {
        const next = (chain.Nodes || {})[sp.NextNode];
        const zero = !Number(sp.Weight);
        node.rows.push({ strong: weightText(sp.Weight), text: next ? next.Name : sp.NextNode, cls: zero ? 'muted' : '', weight: true });
        edges.push({ from: key, row: i, to: visit(sp.NextNode), cls: zero ? 'split zero' : 'split' });
      });
    } else if (n.Type === 'resolver') {
      const res = n.Resolver || {};
      const t = targets[res.Target] || {};
      if (t.Service && hasEntry(entries, 'service-resolver', t.Service)) node.href = uiPath('entries', 'service-resolver', t.Service);
      if (res.Default) node.rows.push({ text: 'default resolver (no entry)', cls: 'muted' });
      if (t.ServiceSubset) node.rows.push({ strong: 'subset', text: targetSubsetText(t) });
      for (const from of redirectsTo(t, entries, reached)) node.rows.push({ strong: 'redirect', text: `from ${from}` });
      if (res.ConnectTimeout) node.rows.push({ strong: 'connect timeout', text: res.ConnectTimeout });
      if (res.Target) edges.push({ from: key, row: -1, to: targetNode(res.Target), cls: 'primary' });
      const fo = (res.Failover && res.Failover.Targets) || [];
      fo.forEach((id, i) => {
        node.rows.push({ strong: `failover ${fo.length > 1 ? i + 1 : ''}`.trim(), text: id, cls: 'failover' });
        edges.push({ from: key, row: node.rows.length - 1, to: targetNode(id), cls: 'failover' });
      });
    }
    return key;
  };

  if (chain.StartNode) visit(chain.StartNode);
  // Nodes not reachable from the start (there should be none) still show.
  for (const key of Object.keys(chain.Nodes || {}).sort()) visit(key);
  return { nodes: [...nodes.values()], edges, start: chain.StartNode };
}

// --- layout ---------------------------------------------------------------

function rowHeight(r) {
  return r.sub ? ROW_SUB_H : ROW_H;
}

function size(node) {
  let w = Math.max(measure(node.title, FONT_TITLE), measure(node.type.toUpperCase(), FONT_BOLD) + 40);
  for (const r of node.rows) {
    const strong = r.strong ? measure(r.strong + ' ', FONT_BOLD) : 0;
    w = Math.max(w, strong + measure(r.text || '', FONT));
    if (r.sub) w = Math.max(w, measure(r.sub, FONT_SUB));
  }
  node.w = Math.round(Math.min(MAX_W, Math.max(MIN_W, w + 2 * PAD_X + 10)));
  node.h = HEADER_H + node.rows.reduce((a, r) => a + rowHeight(r), 0) + (node.rows.length ? PAD_BOTTOM : 0);
}

// portY is the y of the edge leaving node from row (-1: the header).
function portY(node, row) {
  if (row < 0) return node.y + HEADER_H / 2;
  let y = node.y + HEADER_H;
  for (let i = 0; i < row; i++) y += rowHeight(node.rows[i]);
  return y + rowHeight(node.rows[row]) / 2 - (node.rows[row].sub ? 7 : 0);
}

// layout places the model's nodes: x by column, y near the mean of the
// ports that point at the node, without overlaps.
export function layout(model, narrowWidth = 0) {
  const byId = new Map(model.nodes.map((n) => [n.id, n]));
  model.nodes.forEach(size);
  const present = [...new Set(model.nodes.map((n) => TYPE_COLUMN[n.type] ?? 4))].sort((a, b) => a - b);
  const columns = present.map((c) => model.nodes.filter((n) => (TYPE_COLUMN[n.type] ?? 4) === c).sort((a, b) => a.order - b.order));
  if (narrowWidth) return layoutNarrow(model, columns, narrowWidth);
  let x = MARGIN;
  for (const col of columns) {
    const w = Math.max(...col.map((n) => n.w));
    for (const n of col) {
      n.x = x;
      n.w = w; // one width per column: edges leave from one line
    }
    x += w + COL_GAP;
  }
  const width = x - COL_GAP + MARGIN;
  const incoming = new Map();
  for (const e of model.edges) {
    if (!incoming.has(e.to)) incoming.set(e.to, []);
    incoming.get(e.to).push(e);
  }
  let height = 0;
  for (const col of columns) {
    // Order by where the edges come from, then stack top-down.
    for (const n of col) {
      const ins = (incoming.get(n.id) || []).filter((e) => byId.get(e.from).y !== undefined);
      n.want = ins.length ? ins.reduce((a, e) => a + portY(byId.get(e.from), e.row), 0) / ins.length - HEADER_H / 2 : MARGIN;
    }
    col.sort((a, b) => a.want - b.want || a.order - b.order);
    let y = MARGIN;
    for (const n of col) {
      n.y = Math.round(Math.max(n.want, y));
      y = n.y + n.h + NODE_GAP;
    }
    height = Math.max(height, y - NODE_GAP + MARGIN);
  }
  model.width = Math.ceil(width);
  model.height = Math.ceil(height);
  return model;
}

// layoutNarrow stacks the columns top to bottom (for screens narrower than
// the graph): every node takes the full width less a lane on the right,
// where the edges run down from a row to the node they lead to.
function layoutNarrow(model, columns, width) {
  const w = Math.max(MIN_W, Math.min(NARROW_MAX_W, width - 2 * MARGIN - LANE_W));
  let y = MARGIN;
  for (const col of columns) {
    for (const n of col) {
      n.w = w;
      n.x = MARGIN;
      n.y = y;
      y += n.h + NODE_GAP;
    }
    y += NODE_GAP;
  }
  model.narrow = true;
  model.width = Math.ceil(w + 2 * MARGIN + LANE_W);
  model.height = Math.ceil(y - 2 * NODE_GAP + MARGIN);
  return model;
}

// --- drawing --------------------------------------------------------------

// narrowEdgePath runs from the row's right end out into the lane (further
// out for longer edges, lane slot i) and back into the target's header.
function narrowEdgePath(from, row, to, height) {
  const x1 = from.x + from.w;
  const y1 = portY(from, row);
  const x2 = to.x + to.w + 2;
  const y2 = to.y + HEADER_H / 2;
  // Longer edges bulge further out, so they nest instead of crossing.
  const out = 14 + (LANE_W - 8) * 1.25 * Math.min(1, Math.abs(y2 - y1) / Math.max(1, height));
  return `M${x1},${y1} C${x1 + out},${y1} ${x2 + out},${y2} ${x2},${y2}`;
}

function edgePath(from, row, to) {
  const x1 = from.x + from.w;
  const y1 = portY(from, row);
  const x2 = to.x - 2;
  const y2 = to.y + HEADER_H / 2;
  const dx = Math.max(30, (x2 - x1) / 2);
  return `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
}

function drawNode(n, changed) {
  const cls = `node node-${n.type}${changed ? ' changed' : ''}${n.href ? ' linked' : ''}`;
  const inner = n.w - 2 * PAD_X;
  const g = s('g', { class: cls, transform: `translate(${n.x},${n.y})`, 'data-node-id': n.id });
  g.append(
    s('title', {}, `${n.type} ${n.title}`),
    s('rect', { class: 'node-box', width: n.w, height: n.h, rx: 8 }),
    s('rect', { class: 'node-band', width: 5, height: n.h, rx: 2 }),
    s('text', { class: 'node-type', x: PAD_X, y: 16 }, n.type.toUpperCase()),
    s('text', { class: 'node-name', x: PAD_X, y: 32 }, fit(n.title, FONT_TITLE, inner)),
  );
  if (n.rows.length) g.append(s('line', { class: 'node-sep', x1: 5, x2: n.w, y1: HEADER_H - 2, y2: HEADER_H - 2 }));
  let y = HEADER_H;
  n.rows.forEach((r) => {
    const hgt = rowHeight(r);
    const base = y + 14;
    const t = s('text', { class: `row ${r.cls || ''}${r.weight ? ' weight-row' : ''}`.trim(), x: PAD_X, y: base });
    const full = (r.strong ? r.strong + ' ' : '') + (r.text || '');
    if (r.strong) {
      t.append(s('tspan', { class: r.weight ? 'row-strong weight' : 'row-strong' }, r.strong));
      const room = inner - measure(r.strong + ' ', FONT_BOLD);
      t.append(s('tspan', {}, ' ' + fit(r.text || '', FONT, room)));
    } else {
      t.append(fit(r.text || '', FONT, inner));
    }
    const rg = s('g', { class: 'row-group' }, s('title', {}, r.sub ? `${full}\n${r.sub}` : full), t);
    if (r.sub) rg.append(s('text', { class: 'row-sub', x: PAD_X, y: base + 14 }, fit(r.sub, FONT_SUB, inner)));
    g.append(rg);
    y += hgt;
  });
  if (n.id.startsWith('router:') || n.id.startsWith('splitter:')) {
    // Ports: where each row's edge leaves.
    n.rows.forEach((_, i) => g.append(s('circle', { class: 'port', cx: n.w, cy: portY(n, i) - n.y, r: 3 })));
  }
  if (!n.href) return g;
  const a = s('a', { href: n.href, 'data-nav': true, 'aria-label': n.hrefTitle || `Open the entry of ${n.title}` });
  a.append(g);
  return a;
}

// signature identifies what a node shows, to spot changed nodes.
function signature(n) {
  return JSON.stringify([n.type, n.title, n.rows]);
}

// render draws chain into a new <svg>. prev (the signatures returned by the
// previous render, or null) marks changed and new nodes with class "changed".
// It returns {svg, signatures}.
// narrowWidth > 0 stacks the graph in that width (see layoutNarrow).
export function render(chain, entries, prev, narrowWidth = 0) {
  const model = layout(buildModel(chain, entries), narrowWidth);
  const byId = new Map(model.nodes.map((n) => [n.id, n]));
  const svg = s('svg', {
    class: model.narrow ? 'chain-graph narrow' : 'chain-graph',
    width: model.width,
    height: model.height,
    viewBox: `0 0 ${model.width} ${model.height}`,
    role: 'img',
    'aria-label': `Discovery chain of ${chain.ServiceName}`,
    'data-service': chain.ServiceName,
  });
  const defs = s('defs', {});
  for (const [id, cls] of [['arrow', 'arrow'], ['arrow-failover', 'arrow failover'], ['arrow-zero', 'arrow zero']]) {
    defs.append(s('marker', { id, class: cls, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z' })));
  }
  svg.append(defs);
  const edgeG = s('g', { class: 'edges' });
  model.edges.forEach((e) => {
    const from = byId.get(e.from);
    const to = byId.get(e.to);
    if (!from || !to) return;
    const marker = e.cls.includes('failover') ? 'arrow-failover' : e.cls.includes('zero') ? 'arrow-zero' : 'arrow';
    edgeG.append(s('path', {
      class: `edge ${e.cls}`, d: model.narrow ? narrowEdgePath(from, e.row, to, model.height) : edgePath(from, e.row, to),
      'marker-end': `url(#${marker})`, 'data-from': e.from, 'data-to': e.to,
    }));
  });
  svg.append(edgeG);
  const nodeG = s('g', { class: 'nodes' });
  const signatures = new Map();
  for (const n of model.nodes) {
    const sig = signature(n);
    signatures.set(n.id, sig);
    nodeG.append(drawNode(n, prev !== null && prev !== undefined && prev.get(n.id) !== sig));
  }
  svg.append(nodeG);
  return { svg, signatures, model };
}
