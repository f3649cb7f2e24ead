/**
 * The status page: one HTML document with its style and script inline (nothing to install or
 * serve besides it), which asks `status.json` for the figures every refreshSeconds and draws
 * them. Every value is put into the page as text (textContent, SVG attributes), never as markup:
 * owner names come from voicemail.conf and errors from servers. The Content-Security-Policy the
 * server sends with it allows only this page's own script and style (by nonce) and requests to
 * its own origin.
 */

export interface StatusPageOptions {
  readonly refreshSeconds: number;
  /** Where the queue view is, when it is on. */
  readonly queuesPath?: string;
  /** A fresh random value per response, also in the Content-Security-Policy header. */
  readonly nonce: string;
}

export function statusPageCsp(nonce: string): string {
  return `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
#summary span { margin-right: 1.2em; }
.bad { color: #b00020; font-weight: 600; }
table { border-collapse: collapse; margin-top: 1em; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.stale td, tr.failing td { background: #fff2f2; }
tr.waiting td { color: #777; }
.chart { margin: .5em 1.5em .5em 0; display: inline-block; vertical-align: top; }
.chart svg { border: 1px solid #ddd; background: #fafafa; }
#updated { color: #666; }
`;

// Runs in the browser. Kept free of markup strings: every value goes in as text.
const SCRIPT = `
(function () {
  var refreshMs = Number(document.body.dataset.refreshSeconds) * 1000;
  var filter = document.getElementById('filter');
  var last = null;
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function ago(iso) {
    if (!iso) return '';
    var s = Math.round((Date.now() - Date.parse(iso)) / 1000);
    if (s < 120) return s + ' s ago';
    if (s < 7200) return Math.round(s / 60) + ' min ago';
    return Math.round(s / 3600) + ' h ago';
  }
  function drawSummary(v) {
    var box = document.getElementById('summary');
    box.replaceChildren();
    var t = v.totals;
    box.append(el('span', t.mailboxes + ' mailboxes'), el('span', t.ok + ' in step'));
    box.append(el('span', t.stale + ' stale', t.stale ? 'bad' : ''), el('span', t.failing + ' failing', t.failing ? 'bad' : ''), el('span', t.waiting + ' not yet reconciled'));
  }
  function drawTable(v) {
    var body = document.getElementById('rows');
    var q = filter.value.trim().toLowerCase();
    body.replaceChildren();
    v.mailboxes.forEach(function (m) {
      if (q && (m.mailbox + ' ' + m.owner + ' ' + m.imapUser).toLowerCase().indexOf(q) < 0) return;
      var tr = el('tr', null, m.state);
      tr.dataset.mailbox = m.mailbox;
      var problem = m.state === 'stale' ? 'stale since ' + m.staleSince + ': ' + m.staleReason : m.state === 'failing' ? m.error : '';
      [
        [m.mailbox], [m.owner], [m.imapUser], [m.state],
        [m.store, 'num'], [m.imap, 'num'], [m.new, 'num'], [m.old, 'num'],
        [m.reconciledAt ? ago(m.reconciledAt) : 'never'], [m.reconcileMs === undefined ? '' : m.reconcileMs + ' ms', 'num'],
        [m.quotaPercent === undefined ? '' : m.quotaPercent + ' % ' + m.quotaResource, 'num'], [problem]
      ].forEach(function (c) {
        var td = el('td', c[0] === undefined ? '' : c[0], c[1]);
        if (c[1] === 'num' && c[0] !== undefined) td.dataset.value = String(c[0]);
        tr.append(td);
      });
      if (m.reconciledAt) tr.children[8].title = m.reconciledAt;
      body.append(tr);
    });
  }
  var NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }
  function drawCharts(v) {
    var box = document.getElementById('charts');
    box.replaceChildren();
    if (v.latency.length === 0) { box.append(el('p', 'No lamp has been changed since the figures were kept.')); return; }
    v.latency.forEach(function (series) {
      var W = 360, H = 120, P = 4;
      var div = el('div', null, 'chart');
      div.dataset.target = series.target;
      div.append(el('div', series.target + ': p50 ' + series.p50Ms + ' ms, p95 ' + series.p95Ms + ' ms, max ' + series.maxMs + ' ms (' + series.samples.length + ' changes)'));
      var s = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
      s.append(svg('title', {}));
      s.firstChild.textContent = 'change to lamp, ' + series.target;
      var times = series.samples.map(function (p) { return Date.parse(p.at); });
      var t0 = Math.min.apply(null, times), t1 = Math.max.apply(null, times);
      var top = Math.max(1, series.maxMs);
      series.samples.forEach(function (p, i) {
        var x = P + (t1 > t0 ? (times[i] - t0) / (t1 - t0) : 0.5) * (W - 2 * P);
        var y = H - P - (p.ms / top) * (H - 2 * P);
        s.append(svg('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: 2.5, fill: '#3367d6' }));
      });
      div.append(s);
      box.append(div);
    });
  }
  function draw(v) {
    last = v;
    drawSummary(v);
    drawTable(v);
    drawCharts(v);
    document.getElementById('updated').textContent = 'updated ' + new Date(v.generatedAt).toLocaleTimeString();
    document.body.dataset.generatedAt = v.generatedAt;
  }
  function load() {
    fetch('status.json', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (v) { draw(v); document.getElementById('error').textContent = ''; })
      .catch(function (e) { document.getElementById('error').textContent = 'cannot load the figures: ' + e.message; })
      .finally(function () { setTimeout(load, refreshMs); });
  }
  filter.addEventListener('input', function () { if (last) drawTable(last); });
  load();
})();
`;

const COLUMNS = ['Mailbox', 'Owner', 'IMAP user', 'State', 'Store', 'IMAP', 'New', 'Old', 'Last reconcile', 'Took', 'Quota', 'Problem'];

export function statusPageHtml(opts: StatusPageOptions): string {
  const queues = opts.queuesPath ? ` · <a href="${opts.queuesPath}">queues</a>` : '';
  const head = COLUMNS.map((c) => `<th>${c}</th>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>vmbridge status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="${opts.nonce}">${STYLE}</style>
</head>
<body data-refresh-seconds="${opts.refreshSeconds}">
<h1>vmbridge status</h1>
<div><span id="updated">loading…</span>${queues} · <a href="status.json">JSON</a> · <a href="metrics">metrics</a></div>
<p id="error" class="bad"></p>
<div id="summary"></div>
<h2>Change to lamp</h2>
<div id="charts"></div>
<h2>Mailboxes</h2>
<label>Filter <input id="filter" type="search" placeholder="mailbox, owner or IMAP user"></label>
<table><thead><tr>${head}</tr></thead><tbody id="rows"></tbody></table>
<script nonce="${opts.nonce}">${SCRIPT}</script>
</body>
</html>
`;
}
