// app.js: the single-page application's entry point. It maps the path under
// /ui/ to a page, intercepts in-app links (history.pushState, no reload),
// shows whether the server answers, and keeps the ACL token setting.
// Each page gets an AbortSignal that ends its blocking queries when the user
// leaves it.

import { connection, token, setToken } from './api.js';
import { fill, h, empty, code } from './dom.js';
import { servicesPage } from './services.js';
import { chainPage } from './chain.js';
import { entriesPage, entryPage } from './entries.js';
import { peersPage } from './peers.js';

const ROUTES = [
  { re: /^$/, page: servicesPage, section: 'services' },
  { re: /^services$/, page: servicesPage, section: 'services' },
  { re: /^chain\/([^/]+)$/, page: chainPage, section: 'services', params: ['service'] },
  { re: /^entries$/, page: entriesPage, section: 'entries' },
  { re: /^entries\/([^/]+)$/, page: entriesPage, section: 'entries', params: ['kind'] },
  { re: /^entries\/([^/]+)\/([^/]+)$/, page: entryPage, section: 'entries', params: ['kind', 'name'] },
  { re: /^peers$/, page: peersPage, section: 'peers' },
];

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const status = document.getElementById('status');
let current = null;

function route() {
  if (current) current.abort();
  current = new AbortController();
  const rel = location.pathname.replace(/^\/ui\/?/, '').replace(/\/$/, '');
  for (const r of ROUTES) {
    const m = rel.match(r.re);
    if (!m) continue;
    const params = {};
    try {
      (r.params || []).forEach((p, i) => { params[p] = decodeURIComponent(m[i + 1]); });
    } catch {
      break; // a malformed %-escape: no such page
    }
    document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('active', a.dataset.section === r.section));
    r.page(main, params, current.signal);
    window.scrollTo(0, 0);
    return;
  }
  fill(main, empty(`No page at ${location.pathname}.`, 'Go to the services list: ', h('a', { href: '/ui/services', 'data-nav': true }, '/ui/services')));
}

export function navigate(href) {
  if (href === location.pathname) return;
  history.pushState(null, '', href);
  route();
}

document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest && ev.target.closest('a[data-nav]');
  if (!a) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/ui/')) return;
  ev.preventDefault();
  navigate(href);
});
window.addEventListener('popstate', route);

// Connection state: the header dot and, while the server does not answer, a
// banner. Pages keep their last data and retry by themselves.
connection.addEventListener('change', (ev) => {
  const { state, error } = ev.detail;
  status.dataset.state = state;
  if (state === 'down') {
    status.textContent = 'offline';
    banner.hidden = false;
    fill(banner, h('strong', {}, 'Server unreachable, retrying. '),
      'Is stored running and serving HTTP here? The page keeps the last data it received. ',
      h('span', { class: 'muted' }, `(${error.message})`));
  } else {
    status.textContent = 'connected';
    banner.hidden = true;
  }
});

// Token: an ACL token sent with every request (X-Consul-Token), kept in
// this browser only.
function tokenControl() {
  const input = h('input', { type: 'password', placeholder: 'ACL token', autocomplete: 'off', 'aria-label': 'ACL token' });
  const form = h('form', { class: 'token-form', hidden: true },
    input,
    h('button', { type: 'submit' }, 'Save'),
    h('button', { type: 'button', onclick: () => { setToken(''); input.value = ''; form.hidden = true; route(); } }, 'Clear'),
    h('span', { class: 'muted' }, 'Kept in this browser; sent as ', code('X-Consul-Token'), '.'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    form.hidden = true;
    route();
  });
  const button = h('button', { type: 'button', class: 'token-button', onclick: () => {
    form.hidden = !form.hidden;
    input.value = token();
    if (!form.hidden) input.focus();
  } }, 'Token');
  return { button, form };
}

const tc = tokenControl();
document.querySelector('header.top').append(tc.button);
banner.before(tc.form);
route();
