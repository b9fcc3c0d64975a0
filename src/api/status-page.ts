import { createHash } from 'node:crypto';

/**
 * The live status page at /ui: one self-contained HTML document (no framework, no build step, no
 * third-party origin). It polls the status list endpoint every second and draws each trigger with
 * a progress bar, rate, ETA and dead-letter count. Everything from data is set as text
 * (textContent, attribute values), never parsed as HTML: trigger ids and error messages come from
 * whoever wrote the trigger. With authentication on, the page asks for an admin bearer token and
 * keeps it in sessionStorage (gone when the tab closes), sending it as Authorization.
 */
export const STATUS_PAGE_PATH = '/ui';

const STYLE = `
:root { font: 14px/1.4 system-ui, sans-serif; color: #1d232a; background: #f6f7f9; }
body { margin: 0 auto; max-width: 1200px; padding: 16px; }
h1 { font-size: 20px; margin: 0 0 4px; }
#status-line { color: #56606b; }
body > p:first-of-type { margin: 0 0 12px; }
#status-line.error { color: #b3261e; }
[hidden] { display: none !important; }
form#auth { background: #fff7e0; border: 1px solid #e6c66b; padding: 8px 12px; margin-bottom: 12px; }
form#auth input { width: 28em; font: inherit; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e3e6ea; vertical-align: top; }
th { font-weight: 600; color: #56606b; font-size: 12px; text-transform: uppercase; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.id { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
.sub { color: #56606b; font-size: 12px; }
.state { font-weight: 600; }
tr[data-state="done"] .state { color: #1e7b34; }
tr[data-state="failed"] .state { color: #b3261e; }
tr[data-state="running"] .state { color: #1f5fbf; }
progress { width: 160px; height: 14px; vertical-align: middle; }
td.bar { white-space: nowrap; }
.dead { color: #b3261e; font-weight: 600; }
.error-text { color: #b3261e; font-size: 12px; }
#empty { color: #56606b; padding: 12px 0; }
`;

const SCRIPT = `
(function () {
  'use strict';
  var TOKEN_KEY = 'enrolment-sync.token';
  var POLL_MS = 1000;
  // The API's paths sit beside /ui, also behind a proxy that adds a prefix.
  var base = location.pathname.replace(/\\/ui\\/?$/, '');
  var endpoint = base + '/v1/content/state/sync?limit=50';
  var tbody = document.getElementById('triggers');
  var line = document.getElementById('status-line');
  var empty = document.getElementById('empty');
  var authForm = document.getElementById('auth');
  var authReason = document.getElementById('auth-reason');
  var tokenInput = document.getElementById('token');
  var forget = document.getElementById('forget');
  var rows = new Map();
  var timer;

  function text(node, value) {
    var s = value === undefined || value === null ? '' : String(value);
    if (node.textContent !== s) node.textContent = s;
  }
  function cell(tr, className) {
    var td = document.createElement('td');
    if (className) td.className = className;
    tr.appendChild(td);
    return td;
  }
  function span(parent, className) {
    var s = document.createElement('span');
    s.className = className;
    parent.appendChild(s);
    return s;
  }
  function number(n) {
    return n === undefined || n === null ? '' : Number(n).toLocaleString('en-US');
  }
  function duration(seconds) {
    if (seconds === undefined || seconds === null) return '';
    var s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
    return Math.floor(s / 3600) + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm';
  }
  function clock(ms) {
    return typeof ms === 'number' ? new Date(ms).toLocaleTimeString() : '';
  }
  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function setLine(message, isError) {
    text(line, message);
    line.className = isError ? 'error' : '';
  }

  function makeRow() {
    var tr = document.createElement('tr');
    var who = cell(tr);
    var r = { tr: tr };
    r.id = span(who, 'id');
    who.appendChild(document.createElement('br'));
    r.what = span(who, 'sub');
    r.state = span(cell(tr), 'state');
    var bar = cell(tr, 'bar');
    r.bar = document.createElement('progress');
    r.bar.max = 1;
    bar.appendChild(r.bar);
    bar.appendChild(document.createTextNode(' '));
    r.percent = span(bar, 'percent');
    r.events = cell(tr, 'num');
    r.rate = cell(tr, 'num');
    r.eta = cell(tr, 'num');
    r.tasks = cell(tr, 'num');
    r.dead = cell(tr, 'num');
    var when = cell(tr);
    r.when = span(when, 'sub');
    when.appendChild(document.createElement('br'));
    r.error = span(when, 'error-text');
    return r;
  }

  function fill(r, s) {
    r.tr.setAttribute('data-trigger-id', s.triggerId);
    r.tr.setAttribute('data-state', s.state);
    text(r.id, s.triggerId);
    var what = [s.courseId, s.batchId].filter(Boolean).join(' / ');
    if (s.users === null) what += ' (whole batch)';
    else if (typeof s.users === 'number') what += ' (' + number(s.users) + ' users)';
    if (s.requestedBy) what += ' by ' + s.requestedBy;
    text(r.what, what);
    text(r.state, s.joinedTo ? s.state + ' ' + s.joinedTo : s.state);
    var progress = s.state === 'done' ? 1 : s.progress;
    var known = typeof progress === 'number';
    // Unknown progress is drawn as moving only while something can still move.
    if (!known && (s.state === 'failed' || s.state === 'joined')) progress = 0;
    if (typeof progress === 'number') {
      r.bar.value = progress;
      r.tr.setAttribute('data-progress', String(progress));
      text(r.percent, known ? Math.floor(progress * 100) + '%' : '');
    } else {
      r.bar.removeAttribute('value');
      r.tr.removeAttribute('data-progress');
      text(r.percent, '');
    }
    text(r.events, number(s.eventsProduced));
    text(r.rate, s.eventsPerSecond === undefined ? '' : number(s.eventsPerSecond) + '/s');
    text(r.eta, s.state === 'running' ? duration(s.etaSeconds) : '');
    text(r.tasks, s.tasks && s.tasks.total > 0 ? s.tasks.done + '/' + s.tasks.total : '');
    text(r.dead, number(s.deadLetters || 0));
    r.dead.className = s.deadLetters > 0 ? 'num dead' : 'num';
    var when = 'started ' + clock(s.startedAt || s.requestedAt);
    if (s.finishedAt) when += ', finished ' + clock(s.finishedAt);
    text(r.when, when);
    text(r.error, s.error ? s.error.code + ': ' + s.error.message : '');
  }

  function render(triggers) {
    var seen = new Set();
    var previous = null;
    triggers.forEach(function (s) {
      seen.add(s.triggerId);
      var r = rows.get(s.triggerId);
      if (!r) {
        r = makeRow();
        rows.set(s.triggerId, r);
      }
      fill(r, s);
      // Keep the list's order (unfinished first, then finished; newest first) without redrawing.
      var at = previous ? previous.nextSibling : tbody.firstChild;
      if (at !== r.tr) tbody.insertBefore(r.tr, at);
      previous = r.tr;
    });
    rows.forEach(function (r, id) {
      if (!seen.has(id)) {
        r.tr.remove();
        rows.delete(id);
      }
    });
    empty.hidden = triggers.length > 0;
    var running = triggers.filter(function (s) { return s.state === 'running'; }).length;
    setLine(running + ' running, ' + triggers.length + ' shown; updated ' + new Date().toLocaleTimeString(), false);
  }

  function askForToken(reason) {
    text(authReason, reason);
    authForm.hidden = false;
  }

  function poll() {
    clearTimeout(timer);
    var headers = { Accept: 'application/json' };
    var t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    forget.hidden = !t;
    fetch(endpoint, { headers: headers, cache: 'no-store', credentials: 'omit' })
      .then(function (res) {
        return res.json().then(
          function (body) { return { res: res, body: body }; },
          function () { return { res: res, body: null }; }
        );
      })
      .then(function (answer) {
        var res = answer.res;
        var body = answer.body;
        var errmsg = body && body.params && body.params.errmsg ? body.params.errmsg : 'HTTP ' + res.status;
        if (res.status === 401 || res.status === 403) {
          askForToken(t ? 'The token was refused: ' + errmsg : 'This API needs an admin bearer token.');
          setLine(errmsg, true);
        } else if (!res.ok || !body || !body.result || !Array.isArray(body.result.triggers)) {
          setLine('The status list is unavailable: ' + errmsg, true);
        } else {
          authForm.hidden = true;
          render(body.result.triggers);
        }
      })
      .catch(function (err) {
        setLine('Cannot reach the API: ' + (err && err.message ? err.message : String(err)), true);
      })
      .then(function () {
        timer = setTimeout(poll, POLL_MS);
      });
  }

  authForm.addEventListener('submit', function (event) {
    event.preventDefault();
    var value = tokenInput.value.trim().replace(/^Bearer\\s+/i, '');
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (e) { /* private mode: this tab only */ }
    tokenInput.value = '';
    poll();
  });
  forget.addEventListener('click', function () {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing kept */ }
    poll();
  });
  poll();
})();
`;

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>enrolment-sync: triggers</title>
<style>${STYLE}</style>
</head>
<body>
<h1>enrolment-sync: triggers</h1>
<p><span id="status-line">Loading…</span> <button type="button" id="forget" hidden>Forget token</button></p>
<form id="auth" hidden>
  <p id="auth-reason"></p>
  <label>Admin bearer token <input id="token" type="password" autocomplete="off" spellcheck="false"></label>
  <button type="submit">Use token</button>
</form>
<table>
  <thead>
    <tr><th>Trigger</th><th>State</th><th>Progress</th><th>Events</th><th>Rate</th><th>ETA</th><th>Tasks</th><th>Dead letters</th><th>When</th></tr>
  </thead>
  <tbody id="triggers"></tbody>
</table>
<p id="empty" hidden>No trigger running or recently finished.</p>
<script>${SCRIPT}</script>
</body>
</html>
`;

/**
 * The API's headers forbid everything (default-src 'none'); the page may run exactly its own
 * inline script and style (by hash) and talk to its own origin.
 */
export const STATUS_PAGE_HEADERS: Record<string, string> = {
  'Content-Security-Policy': [
    "default-src 'none'",
    `script-src ${sha256(SCRIPT)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
};
