import { createHash } from 'node:crypto'
import { POLL_INTERVAL, STATUS_PATH } from './constants.js'

/*
 * The dashboard page: one self-contained document, no build step, no
 * external URLs. The script only ever writes peer-supplied data with
 * textContent / setAttribute (never innerHTML), and the Content-Security-Policy
 * sent with it allows exactly this script and this style, by hash.
 */

const STYLE = `
:root { color-scheme: light dark; --fg: #1d2433; --muted: #667085; --bg: #f6f7f9; --card: #fff; --line: #e3e6ea; --accent: #2f6fde; --warn: #b54708; --bad: #b42318; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #98a2b3; --bg: #12151c; --card: #1b2029; --line: #2c3340; --accent: #6b9cff; --warn: #f79009; --bad: #f97066; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: 4px 24px; align-items: baseline; padding: 16px 24px; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 18px; margin: 0; }
main { padding: 16px 24px 32px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 8px; }
.mono, td.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 8px; }
.figure b { display: block; font-size: 22px; font-weight: 600; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 4px 8px 4px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 500; color: var(--muted); font-size: 12px; }
ul { margin: 0; padding-left: 18px; }
#state.live { color: var(--accent); }
#state.offline { color: var(--bad); }
.warn { color: var(--warn); }
svg { width: 100%; height: 180px; display: block; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .area { fill: var(--accent); fill-opacity: .15; stroke: none; }
svg .line { fill: none; stroke: var(--accent); stroke-width: 1.5; }
svg text { fill: var(--muted); font-size: 11px; }
`

const SCRIPT = `
'use strict';
(function () {
  var POLL_MS = ${POLL_INTERVAL};
  var STATUS_URL = '${STATUS_PATH.slice(1)}';
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var updates = 0;

  function $(id) { return document.getElementById(id); }
  function setText(id, value) { $(id).textContent = String(value); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function num(value) { var n = Number(value); return isFinite(n) ? n : 0; }
  function bytes(n) {
    n = num(n);
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + ' ' + units[i];
  }
  function duration(ms) {
    var s = Math.max(0, Math.floor(num(ms) / 1000));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    if (d > 0) return d + 'd ' + h + 'h ' + m + 'm';
    if (h > 0) return h + 'h ' + m + 'm ' + sec + 's';
    if (m > 0) return m + 'm ' + sec + 's';
    return sec + 's';
  }
  function time(ms) { return new Date(num(ms)).toLocaleTimeString(); }

  /** Replace a table body's rows; each row is an array of [text, class] cells */
  function fillTable(id, rows, columns, empty, key) {
    var body = $(id);
    var trs = rows.map(function (cells, i) {
      var tr = el('tr');
      if (key) tr.setAttribute('data-peer', String(key[i]));
      cells.forEach(function (cell) { tr.append(el('td', cell[0], cell[1])); });
      return tr;
    });
    if (trs.length === 0) {
      var tr = el('tr');
      var td = el('td', empty, 'muted');
      td.colSpan = columns;
      tr.append(td);
      trs.push(tr);
    }
    body.replaceChildren.apply(body, trs);
  }

  function refusals(id, counts) {
    var entries = Object.keys(counts || {}).map(function (reason) { return [reason, num(counts[reason])]; });
    fillTable(id, entries.map(function (e) { return [[e[0], 'mono'], [e[1], e[1] > 0 ? 'warn' : '']]; }), 2, 'none');
  }

  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function chart(throughput, now) {
    var root = $('chart');
    // drawn at the element's own width: a stretched viewBox would distort the labels
    var W = Math.max(300, Math.round(root.clientWidth || 600)), H = 180, L = 84, R = 8, T = 10, B = 22;
    root.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    var interval = Math.max(1, num(throughput && throughput.intervalMs));
    var samples = (throughput && Array.isArray(throughput.samples) ? throughput.samples : []).map(function (s) {
      return [num(s[0]), num(s[1]) * 1000 / interval];
    });
    var span = Math.max(60000, samples.length > 0 ? num(now) - samples[0][0] : 0);
    var max = Math.max(1024, Math.max.apply(null, samples.map(function (s) { return s[1]; }).concat([0])));
    var x = function (t) { return L + (W - L - R) * (1 - (num(now) - t) / span); };
    var y = function (v) { return T + (H - T - B) * (1 - v / max); };
    var nodes = [];
    [0, 0.5, 1].forEach(function (f) {
      nodes.push(svg('line', { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), class: 'grid' }));
      nodes.push(svg('text', { x: L - 6, y: y(max * f) + 4, 'text-anchor': 'end' }, bytes(max * f) + '/s'));
    });
    nodes.push(svg('text', { x: L, y: H - 6 }, '-' + duration(span)));
    nodes.push(svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, 'now'));
    if (samples.length > 0) {
      var points = samples.map(function (s) { return x(s[0]).toFixed(1) + ',' + y(s[1]).toFixed(1); });
      var first = x(samples[0][0]).toFixed(1), last = x(samples[samples.length - 1][0]).toFixed(1), base = y(0).toFixed(1);
      nodes.push(svg('path', { class: 'area', d: 'M' + first + ',' + base + ' L' + points.join(' L') + ' L' + last + ',' + base + ' Z' }));
      nodes.push(svg('polyline', { class: 'line', points: points.join(' ') }));
    }
    root.replaceChildren.apply(root, nodes);
    root.setAttribute('data-samples', String(samples.length));
  }

  function mailbox(m) {
    var box = $('mailbox');
    if (!m || m.enabled !== true) { box.replaceChildren(el('p', 'mailbox: not enabled', 'muted')); return; }
    if (m.error !== undefined) { box.replaceChildren(el('p', 'mailbox: unavailable (' + m.error + ')', 'warn')); return; }
    var figures = el('div', null, 'figures');
    [['recipients', num(m.recipients)], ['messages', num(m.messages)], ['bytes', bytes(m.bytes)],
      ['oldest', m.oldestAgeMs === null || m.oldestAgeMs === undefined ? '-' : duration(m.oldestAgeMs)]].forEach(function (f) {
      var d = el('div', f[0], 'figure muted');
      d.prepend(el('b', f[1]));
      figures.append(d);
    });
    box.replaceChildren(figures);
  }

  function trust(t) {
    var box = $('trust');
    if (!t || t.enabled !== true) { box.replaceChildren(el('p', 'trust gossip: not enabled', 'muted')); return; }
    var figures = el('div', null, 'figures');
    [['attestations', num(t.stored)], ['accepted', num(t.accepted)], ['rejected', num(t.rejected)], ['synced', num(t.synced)]].forEach(function (f) {
      var d = el('div', f[0], 'figure muted');
      d.prepend(el('b', f[1]));
      figures.append(d);
    });
    box.replaceChildren(figures);
  }

  function render(s) {
    setText('peer-id', s.peerId);
    setText('version', 'molt ' + s.version);
    setText('uptime', duration(s.uptimeMs));
    setText('started', new Date(num(s.startedAt)).toLocaleString());
    var notes = [];
    if (s.shuttingDown) notes.push('shutting down: refusing reservations');
    if (s.overBudget) notes.push('over the bandwidth budget: refusing new reservations and relayed connections');
    setText('notes', notes.join('; '));
    var addresses = $('addresses');
    addresses.replaceChildren.apply(addresses, (s.addresses || []).map(function (a) { return el('li', a, 'mono'); }));

    setText('peers-count', num(s.peers.count));
    setText('reservations-count', num(s.reservations.count));
    setText('reservations-limit', 'of ' + num(s.limits.maxReservations) + ' (' + num(s.limits.maxReservationsPerIp) + ' per IP)');
    setText('relayed-open', num(s.relayed.open));
    setText('relayed-total', num(s.relayed.total));
    setText('relayed-bytes', bytes(s.relayed.bytes));
    setText('held-bytes', bytes(s.relayed.heldBytes));
    setText('held-cut', s.relayed.cut > 0 ? num(s.relayed.cut) + ' closed for memory' : '');
    setText('rate', bytes(s.relayed.bytesPerSecond) + '/s');
    setText('budget', num(s.limits.bandwidthBytesPerSecond) > 0 ? 'budget ' + bytes(s.limits.bandwidthBytesPerSecond) + '/s' : 'no budget');

    var reservations = s.reservations.list || [];
    fillTable('reservations', reservations.map(function (r) {
      return [[r.peerId, 'mono'], [r.address, 'mono'], ['in ' + duration(num(r.expiresAt) - num(s.now)) + ' (' + time(r.expiresAt) + ')', '']];
    }), 3, 'no reservations', reservations.map(function (r) { return r.peerId; }));
    setText('reservations-more', s.reservations.truncated ? 'first ' + reservations.length + ' of ' + num(s.reservations.count) + ' shown' : '');

    var peers = s.peers.list || [];
    fillTable('peers', peers.map(function (p) {
      return [[p.peerId, 'mono'], [p.address, 'mono'], [p.direction + (num(p.connections) > 1 ? ' ×' + num(p.connections) : ''), ''],
        [p.reserved ? 'yes' : '', ''], [p.agent === undefined ? '' : p.agent, 'mono'], [duration(num(s.now) - num(p.since)), '']];
    }), 6, 'no peers', peers.map(function (p) { return p.peerId; }));
    setText('peers-more', s.peers.truncated ? 'first ' + peers.length + ' of ' + num(s.peers.count) + ' shown' : '');

    refusals('refused-reservations', s.refused.reservations);
    refusals('refused-circuits', s.refused.relayedConnections);
    chart(s.throughput, s.now);
    mailbox(s.mailbox);
    trust(s.trust);
  }

  function state(live, text) {
    var e = $('state');
    e.textContent = text;
    e.className = live ? 'live' : 'offline';
  }

  function poll() {
    fetch(STATUS_URL, { cache: 'no-store', headers: { accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (s) {
        render(s);
        updates++;
        document.body.setAttribute('data-updates', String(updates));
        state(true, 'live, updated ' + new Date().toLocaleTimeString());
      })
      .catch(function (err) { state(false, 'offline (' + (err && err.message ? err.message : err) + '), retrying'); })
      .finally(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
`

const BODY = `
<header>
  <h1>molt relay</h1>
  <span id="peer-id" class="mono">…</span>
  <span id="version" class="muted"></span>
  <span class="muted">up <span id="uptime">…</span> since <span id="started"></span></span>
  <span id="state" class="muted">connecting…</span>
  <span id="notes" class="warn"></span>
</header>
<main>
  <section class="wide">
    <div class="figures">
      <div class="figure muted"><b id="peers-count">-</b>connected peers</div>
      <div class="figure muted"><b id="reservations-count">-</b>reservations <span id="reservations-limit"></span></div>
      <div class="figure muted"><b id="relayed-open">-</b>relayed connections open</div>
      <div class="figure muted"><b id="relayed-total">-</b>relayed since start</div>
      <div class="figure muted"><b id="relayed-bytes">-</b>relayed bytes</div>
      <div class="figure muted"><b id="held-bytes">-</b>held for open circuits <span id="held-cut"></span></div>
      <div class="figure muted"><b id="rate">-</b>now (10 s average), <span id="budget"></span></div>
    </div>
  </section>
  <section class="wide">
    <h2>Relayed throughput</h2>
    <svg id="chart" viewBox="0 0 600 180" role="img" aria-label="relayed bytes per second"></svg>
  </section>
  <section class="wide">
    <h2>Reservations <span id="reservations-more" class="muted"></span></h2>
    <table><thead><tr><th>peer</th><th>reserved from</th><th>expires</th></tr></thead><tbody id="reservations"></tbody></table>
  </section>
  <section class="wide">
    <h2>Connected peers <span id="peers-more" class="muted"></span></h2>
    <table><thead><tr><th>peer</th><th>address</th><th>direction</th><th>reserved</th><th>agent</th><th>for</th></tr></thead><tbody id="peers"></tbody></table>
  </section>
  <section>
    <h2>Refused reservations</h2>
    <table><tbody id="refused-reservations"></tbody></table>
  </section>
  <section>
    <h2>Refused relayed connections</h2>
    <table><tbody id="refused-circuits"></tbody></table>
  </section>
  <section>
    <h2>Mailbox</h2>
    <div id="mailbox"><p class="muted">…</p></div>
  </section>
  <section>
    <h2>Trust gossip</h2>
    <div id="trust"><p class="muted">…</p></div>
  </section>
  <section>
    <h2>Addresses</h2>
    <ul id="addresses"></ul>
  </section>
</main>
`

/** The whole page */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>molt relay</title>
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`

/**
 * Sent with the page: only the inline script and style above run (by hash),
 * the page may fetch only its own origin, and nothing may frame it.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')
