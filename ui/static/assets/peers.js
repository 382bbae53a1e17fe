// peers.js: /ui/peers, the Raft peers and the leader, read from
// /v1/status/peers and /v1/status/leader every 2 s (they are not blocking
// endpoints).

import { get, sleep, describeError } from './api.js';
import { fill, h, empty, timeText } from './dom.js';

const POLL_MS = 2000;

export function peersPage(main, _params, signal) {
  document.title = 'Peers · chainstore';
  const live = h('span', { class: 'live', 'data-state': 'connecting' }, 'connecting…');
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading peers…'));
  fill(main,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Raft peers')), live),
    h('p', { class: 'meta-text' }, 'The servers that vote in Raft, by their Raft address, as the server this page talks to knows them.'),
    body,
  );
  (async () => {
    let lastErr = null;
    while (!signal.aborted) {
      try {
        const [leader, peers] = await Promise.all([get('/v1/status/leader', { signal }), get('/v1/status/peers', { signal })]);
        if (signal.aborted) return;
        lastErr = null;
        const l = typeof leader.data === 'string' ? leader.data : '';
        const list = Array.isArray(peers.data) ? peers.data.slice().sort() : [];
        live.dataset.state = 'live';
        live.textContent = `polled every ${POLL_MS / 1000}s · ${timeText(new Date())}`;
        const parts = [];
        if (!l) {
          parts.push(h('p', { class: 'notice notice-error' },
            'No leader: the servers are electing one, or fewer than a quorum are up. Writes and consistent reads wait until there is one; this page retries.'));
        }
        if (list.length === 0) {
          parts.push(empty('No Raft peers known.', 'The server has not joined a cluster yet: start the others (scripts/cluster.sh up) or check --join.'));
        } else {
          parts.push(h('div', { class: 'table-scroll' }, h('table', { class: 'peers' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Raft address'), h('th', {}, 'Role'))),
            h('tbody', {}, list.map((p) => h('tr', { 'data-peer': p, class: p === l ? 'leader' : '' },
              h('td', {}, h('code', {}, p)),
              h('td', {}, p === l ? h('span', { class: 'badge badge-leader' }, 'leader') : h('span', { class: 'badge' }, 'follower'))))))));
          parts.push(h('p', { class: 'muted' }, `${list.length} voter${list.length === 1 ? '' : 's'}; a quorum is ${Math.floor(list.length / 2) + 1}.`));
        }
        fill(body, ...parts);
      } catch (e) {
        if (signal.aborted) return;
        live.dataset.state = 'error';
        live.textContent = 'retrying';
        if (!lastErr) body.prepend(h('p', { class: 'notice notice-error' }, describeError(e)));
        lastErr = e;
      }
      await sleep(POLL_MS, signal);
    }
  })();
}
