// dom.js: small helpers to build HTML and SVG elements. Every text from the
// server goes in through textContent or setAttribute, never as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// h builds an HTML element: h('a', {href: '/ui/'}, 'text', child, ...).
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s builds an SVG element.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

// fill replaces el's children, skipping null, undefined and false.
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

// link is an in-app link: the router intercepts clicks on data-nav.
export function link(href, ...children) {
  return h('a', { href, 'data-nav': true }, ...children);
}

// uiPath builds an app path from segments, escaping each one.
export function uiPath(...segs) {
  return '/ui/' + segs.map(encodeURIComponent).join('/');
}

// empty is the box shown when a page has nothing to show: what is missing and
// what to do about it.
export function empty(title, ...what) {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), ...what.map((w) => h('p', {}, w)));
}

export function code(text) {
  return h('code', {}, text);
}

// timeText formats a Date as HH:MM:SS in local time.
export function timeText(d) {
  return d.toLocaleTimeString([], { hour12: false });
}

// jsonView renders a value as indented JSON with highlighted keys and values.
export function jsonView(value) {
  const pre = h('pre', { class: 'json' });
  const put = (cls, text) => pre.append(cls ? h('span', { class: cls }, text) : document.createTextNode(text));
  const walk = (v, indent) => {
    const pad = '  '.repeat(indent);
    if (Array.isArray(v)) {
      if (v.length === 0) return put('', '[]');
      put('', '[\n');
      v.forEach((x, i) => {
        put('', pad + '  ');
        walk(x, indent + 1);
        put('', i < v.length - 1 ? ',\n' : '\n');
      });
      put('', pad + ']');
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      if (keys.length === 0) return put('', '{}');
      put('', '{\n');
      keys.forEach((k, i) => {
        put('', pad + '  ');
        put('j-key', JSON.stringify(k));
        put('', ': ');
        walk(v[k], indent + 1);
        put('', i < keys.length - 1 ? ',\n' : '\n');
      });
      put('', pad + '}');
    } else if (typeof v === 'string') {
      put('j-str', JSON.stringify(v));
    } else if (typeof v === 'number') {
      put('j-num', String(v));
    } else {
      put('j-lit', String(v));
    }
  };
  walk(value, 0);
  return pre;
}
