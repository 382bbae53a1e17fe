// api.js: reads the Consul-compatible HTTP API on the same origin, and follows
// changes with blocking queries (?index=N&wait=D, answered when the result's
// X-Consul-Index passes N or the wait ends).

// APIError is an answer other than 2xx; message is the server's body text.
export class APIError extends Error {
  constructor(status, message, path, index) {
    super(message);
    this.name = 'APIError';
    this.status = status;
    this.path = path;
    this.index = index;
  }
}

// Unreachable means no HTTP answer at all (server down, connection reset).
export class Unreachable extends Error {
  constructor(message) {
    super(message);
    this.name = 'Unreachable';
  }
}

const TOKEN_KEY = 'chainstore.ui.token';

// token is the ACL token the pages send as X-Consul-Token (kept in this
// browser's localStorage; empty when none is set).
export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(t) {
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lasts until the page reloads
  }
}

// Connection state, shown by the app in the header and the banner. Each
// failing request reports itself; any success clears it.
export const connection = new EventTarget();
let lastState = '';
function report(state, detail) {
  if (state === 'ok' && lastState === 'ok') return;
  lastState = state;
  connection.dispatchEvent(new CustomEvent('change', { detail: { state, ...detail } }));
}

// get fetches path and returns {data, index}. With index > 0 it is a blocking
// query that the server holds for up to wait.
export async function get(path, { index = 0, wait = '5m', signal } = {}) {
  let url = path;
  if (index > 0) url += (path.includes('?') ? '&' : '?') + `index=${index}&wait=${wait}`;
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers['X-Consul-Token'] = t;
  let resp;
  let text;
  try {
    resp = await fetch(url, { headers, signal, cache: 'no-store' });
    text = await resp.text();
  } catch (e) {
    if (signal && signal.aborted) throw e;
    const err = new Unreachable(e.message || 'no answer');
    report('down', { error: err });
    throw err;
  }
  const idx = Number(resp.headers.get('X-Consul-Index') || 0);
  if (!resp.ok) {
    // An answer, even an error, proves the server is up.
    report('ok');
    throw new APIError(resp.status, (text || '').trim() || resp.statusText || `HTTP ${resp.status}`, path, idx);
  }
  report('ok');
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new APIError(resp.status, `the server's answer to ${path} is not JSON: ${e.message}`, path, idx);
    }
  }
  return { data, index: idx };
}

// sleep waits ms or until signal aborts.
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

const MIN_ROUND_MS = 250; // a blocking round faster than this with no change backs off
const MAX_BACKOFF_MS = 10000;

// watch follows path with blocking queries until signal aborts. It calls
// onData(data, index) with the first answer and after every change, and
// onError(err, retryMs) when a request fails (then it retries with a growing
// delay, up to 10 s). An endpoint that sends no X-Consul-Index is polled
// every pollMs instead.
export async function watch(path, { onData, onError, signal, wait = '5m', pollMs = 3000 }) {
  let index = 0;
  let first = true;
  let backoff = 500;
  while (!signal.aborted) {
    const started = performance.now();
    try {
      const r = await get(path, { index, wait, signal });
      if (signal.aborted) return;
      backoff = 500;
      const changed = first || r.index !== index || r.index === 0;
      first = false;
      // Consul's rule: an index that goes backwards (a restored snapshot)
      // starts the wait over from 0.
      index = r.index > 0 && r.index >= index ? r.index : 0;
      if (changed) onData(r.data, r.index);
      if (r.index === 0) {
        await sleep(pollMs, signal);
      } else if (!changed && performance.now() - started < MIN_ROUND_MS) {
        await sleep(MIN_ROUND_MS, signal);
      }
    } catch (e) {
      if (signal.aborted) return;
      first = true; // after an error, show the next answer whatever its index
      if (e instanceof APIError && e.status === 404 && e.index > 0) {
        // Not there (yet): block until the index moves, as for a result.
        onError(e, 0);
        const same = e.index === index;
        index = e.index;
        if (same && performance.now() - started < MIN_ROUND_MS) {
          // The server does not hold a missing result: poll, slower and slower.
          await sleep(backoff, signal);
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        }
        continue;
      }
      index = 0;
      onError(e, backoff);
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
}

// Kinds of config entries, in the order pages list them.
export const KINDS = ['proxy-defaults', 'service-defaults', 'service-router', 'service-splitter', 'service-resolver'];

// listAll reads every kind's entries: {kind: [entry, ...]}. A kind whose read
// fails is missing from the result, and the error is returned beside it.
export async function listAll(signal) {
  const out = {};
  let error = null;
  await Promise.all(KINDS.map(async (kind) => {
    try {
      const r = await get(`/v1/config/${kind}`, { signal });
      out[kind] = Array.isArray(r.data) ? r.data : [];
    } catch (e) {
      if (!signal?.aborted) error = error || e;
    }
  }));
  return { entries: out, error };
}

// protocolOf returns a service's protocol and where it comes from, by the
// compiler's rule: its service-defaults Protocol if that entry exists (empty
// means tcp), else proxy-defaults global Config.protocol, else tcp.
export function protocolOf(name, entries) {
  const sd = (entries['service-defaults'] || []).find((e) => e.Name === name);
  if (sd) return { protocol: (sd.Protocol || 'tcp').toLowerCase(), from: 'service-defaults' };
  const pd = (entries['proxy-defaults'] || []).find((e) => e.Name === 'global');
  const p = pd && pd.Config && pd.Config.protocol;
  if (p) return { protocol: String(p).toLowerCase(), from: 'proxy-defaults' };
  return { protocol: 'tcp', from: 'default' };
}

// describeError turns an error into the sentence a page shows.
export function describeError(e) {
  if (e instanceof Unreachable) return 'Server unreachable: is stored running? Retrying.';
  if (e instanceof APIError) {
    if (e.status === 403) return `Permission denied (${e.message}): set an ACL token with read access under "Token".`;
    return `${e.message} (HTTP ${e.status} from ${e.path})`;
  }
  return String(e && e.message ? e.message : e);
}
