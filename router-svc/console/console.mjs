// The wsgate cluster console. Every 2 s it reads GET /api/info from the router that served
// it and shows the gateways (connections, draining, heartbeat age, rates), the routers and the
// cluster's totals; a user lookup (POST /api/presence {user}) lists the user's connections
// with their nodes and channels and can disconnect them (POST /api/disconnect); a channel
// lookup lists who is subscribed. Open lookups refresh with the rest.
//
// Rates come from the counters each heartbeat carries (a gateway's frames sent and received,
// a router's messages routed), stamped with the heartbeat's own time (now - its age), so a
// poll that sees two heartbeats or none does not make the rate jump.

const REFRESH_MS = 2000;
const RATE_WINDOW_MS = 10000;
const SAME_HEARTBEAT_MS = 300; // heartbeats come at least 1 s apart
const KEY_STORE = 'wsgate-console-key';

const $ = (id) => document.getElementById(id);

// Text only, never markup: ids, channels and reasons come from users.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? body?.reason ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error ?? body?.reason ?? null;
  }
}

const state = {
  key: sessionStorage.getItem(KEY_STORE) ?? '',
  user: null, // the user looked up, kept fresh
  note: null, // {user, text, closed}: what the last disconnect did
  channel: null,
  samples: new Map(), // rate key -> [{t, v}]
  timer: null,
  lastOk: 0,
};

async function api(method, path, body) {
  const headers = {};
  if (state.key) headers.Authorization = `apikey ${state.key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let parsed = null;
  try {
    parsed = await r.json();
  } catch {
    // a proxy's HTML error page, say: the status tells
  }
  if (!r.ok) throw new ApiError(r.status, parsed);
  return parsed;
}

// ---- rates ----

function rate(key, t, v) {
  let s = state.samples.get(key);
  if (!s) state.samples.set(key, (s = []));
  const last = s[s.length - 1];
  if (last && v < last.v) s.length = 0; // a restart: counters begin again
  // the same heartbeat seen by another poll: its time differs only by the polls' jitter
  if (!last || v < last.v || t > last.t + SAME_HEARTBEAT_MS) s.push({ t, v });
  while (s.length > 2 && s[1].t <= t - RATE_WINDOW_MS) s.shift();
  if (s.length < 2) return null;
  const first = s[0];
  const newest = s[s.length - 1];
  return newest.t > first.t ? ((newest.v - first.v) * 1000) / (newest.t - first.t) : null;
}

const fmtInt = (n) => (n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en-US'));
const fmtRate = (r) => (r === null ? '–' : r < 10 ? r.toFixed(1) : fmtInt(r));
function fmtAge(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60000)} min`;
}
const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString() : '–');

// ---- the cluster ----

const byId = (list) => list.slice().sort((a, b) => a.id.localeCompare(b.id));

function renderInfo(info) {
  const now = Date.now();
  $('router').textContent = `router ${info.router}`;
  const seen = new Set();
  // a counter's rate, its series kept while it is still reported
  const track = (key, t, v) => {
    seen.add(key);
    return rate(key, t, v);
  };
  let sent = 0;
  let received = 0;
  let sentKnown = false;
  const nodeRows = byId(info.nodes)
    .map((n) => {
      const at = now - n.heartbeat_age_ms;
      const rs = track(`node/${n.id}/${n.epoch}/sent`, at, n.frames_sent);
      const rr = track(`node/${n.id}/${n.epoch}/received`, at, n.frames_received);
      if (rs !== null) { sent += rs; sentKnown = true; }
      if (rr !== null) received += rr;
      const late = n.heartbeat_age_ms > 5000;
      const pill = n.draining ? el('span', { class: 'pill draining' }, 'draining')
        : late ? el('span', { class: 'pill late' }, 'late')
          : el('span', { class: 'pill' }, 'serving');
      return el('tr', { dataset: { node: n.id } },
        el('td', {}, n.id), el('td', { class: 'state' }, pill),
        el('td', { class: 'num connections' }, fmtInt(n.connections)),
        el('td', { class: 'num' }, fmtRate(rs)), el('td', { class: 'num' }, fmtRate(rr)),
        el('td', { class: 'num age' }, fmtAge(n.heartbeat_age_ms)), el('td', { class: 'muted' }, n.epoch));
    });
  $('nodes').tBodies[0].replaceChildren(...nodeRows);
  $('nodes-empty').hidden = nodeRows.length > 0;

  let routed = 0;
  let routedKnown = false;
  const routerRows = byId(info.routers)
    .map((r) => {
      const rr = track(`router/${r.id}/${r.started_at}`, now - r.heartbeat_age_ms, r.routed);
      if (rr !== null) { routed += rr; routedKnown = true; }
      return el('tr', { dataset: { router: r.id } },
        el('td', {}, r.id, r.self ? el('span', { class: 'muted' }, ' (this one)') : ''),
        el('td', { class: 'num' }, fmtRate(rr)),
        el('td', { class: 'num' }, r.self ? '–' : fmtAge(r.heartbeat_age_ms)),
        el('td', { class: 'muted' }, fmtTime(r.started_at)));
    });
  $('routers').tBodies[0].replaceChildren(...routerRows);
  for (const k of [...state.samples.keys()]) if (!seen.has(k)) state.samples.delete(k);

  const t = info.totals;
  $('t-nodes').textContent = fmtInt(t.nodes);
  $('t-connections').textContent = fmtInt(t.connections);
  $('t-users').textContent = fmtInt(t.users);
  $('t-channels').textContent = fmtInt(t.channels);
  $('t-routed').textContent = routedKnown ? fmtRate(routed) : '–';
  $('t-sent').textContent = sentKnown ? fmtRate(sent) : '–';
  $('t-received').textContent = sentKnown ? fmtRate(received) : '–';
}

// ---- lookups ----

function noteFor(user) {
  const n = state.note?.user === user ? state.note : null;
  return n ? el('p', { class: 'muted note', dataset: { closed: String(n.closed) } }, n.text) : '';
}

function renderUser(user, p) {
  const box = $('user-result');
  if (!p.online) {
    box.replaceChildren(el('div', { class: 'result', dataset: { user, online: 'false' } },
      el('p', {}, el('b', {}, user), ' has no connection.'), noteFor(user)));
    return;
  }
  const nodes = new Set(p.connections.map((c) => c.node));
  const rows = p.connections
    .slice()
    .sort((a, b) => a.connected_at - b.connected_at)
    .map((c) => el('tr', { dataset: { conn: c.conn_id, node: c.node } },
      el('td', {}, c.node), el('td', { class: 'muted' }, c.conn_id),
      el('td', {}, fmtTime(c.connected_at)),
      el('td', {}, c.channels.length ? c.channels.map((ch) => el('span', { class: 'chan' }, ch)) : el('span', { class: 'muted' }, 'none'))));
  const allowBack = el('input', { type: 'checkbox', id: 'allow-reconnect' });
  const button = el('button', { type: 'button', class: 'danger disconnect', dataset: { user } }, 'Disconnect');
  button.addEventListener('click', () => disconnect(user, allowBack.checked, button));
  box.replaceChildren(el('div', { class: 'result', dataset: { user, online: 'true' } },
    el('div', { class: 'head' },
      el('span', { class: 'grow' }, el('b', {}, user), ` — ${p.connections.length} connection(s) on ${nodes.size} gateway(s)`),
      el('label', { class: 'inline' }, allowBack, 'may reconnect'), button),
    el('div', { class: 'scroll' }, el('table', { class: 'conns' },
      el('thead', {}, el('tr', {}, el('th', {}, 'node'), el('th', {}, 'connection'), el('th', {}, 'since'), el('th', {}, 'channels'))),
      el('tbody', {}, rows))),
    noteFor(user)));
}

function renderChannel(channel, p) {
  const users = p.users.slice().sort();
  $('channel-result').replaceChildren(el('div', { class: 'result', dataset: { channel } },
    el('p', {}, el('b', {}, channel), ` — ${users.length} user(s), ${p.connections} subscribed connection(s)`),
    users.length ? el('ul', { class: 'users' }, users.map((u) => el('li', { dataset: { user: u } }, u))) : ''));
}

function showError(box, err) {
  box.replaceChildren(el('p', { class: 'error' }, describe(err)));
}

function describe(err) {
  if (!(err instanceof ApiError)) return `The router did not answer (${err.message}).`;
  if (err.status === 401) return 'Wrong or missing API key.';
  if (err.code === 'api_disabled') return 'The router serves no API here: set WSGATE_API_KEY on it.';
  if (err.code === 'bad_user') return 'Not a valid user id.';
  if (err.code === 'bad_channel') return 'Not a valid channel name.';
  return `The router answered ${err.status} ${err.code ?? ''}.`;
}

async function lookUpUser(user) {
  const p = await api('POST', '/api/presence', { user });
  if (state.user === user) renderUser(user, p);
}

async function lookUpChannel(channel) {
  const p = await api('POST', '/api/presence', { channel });
  if (state.channel === channel) renderChannel(channel, p);
}

async function disconnect(user, allowBack, button) {
  button.disabled = true;
  const body = allowBack
    ? { user, code: 1012, reason: 'disconnected from the console' }
    : { user, reconnect: false, reason: 'disconnected from the console' };
  try {
    const r = await api('POST', '/api/disconnect', body);
    state.note = { user, closed: r.connections,
      text: `Closed ${r.connections} connection(s) on ${r.nodes} gateway(s)` +
        (allowBack ? ' (code 1012: clients reconnect).' : ' (code 4003: clients stay away).') };
    // the gateways close within about a second: the next refreshes show it
    await lookUpUser(user);
  } catch (err) {
    showError($('user-result'), err);
  } finally {
    button.disabled = false;
  }
}

// ---- the loop ----

function setStatus(kind, text) {
  const s = $('status');
  s.dataset.state = kind;
  s.textContent = text;
}

function askKey(why) {
  $('key-why').textContent = why;
  $('key-form').hidden = false;
  $('main').hidden = true;
  $('key').focus();
}

async function refresh() {
  try {
    const info = await api('GET', '/api/info');
    $('key-form').hidden = true;
    $('main').hidden = false;
    renderInfo(info);
    state.lastOk = Date.now();
    setStatus('ok', `updated ${new Date().toLocaleTimeString()}`);
    await Promise.all([
      state.user && lookUpUser(state.user).catch((e) => showError($('user-result'), e)),
      state.channel && lookUpChannel(state.channel).catch((e) => showError($('channel-result'), e)),
    ]);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      stop();
      askKey(state.key ? 'That key was refused. Enter the router\'s API key (WSGATE_API_KEY).'
        : 'This router\'s API needs its key (WSGATE_API_KEY).');
      setStatus('error', 'needs the API key');
      return;
    }
    if (err instanceof ApiError && err.code === 'api_disabled') {
      stop();
      askKey('This router serves no API on this address: it has no WSGATE_API_KEY and does not listen on loopback only. Set a key on the router.');
      setStatus('error', 'API disabled');
      return;
    }
    setStatus(state.lastOk ? 'stale' : 'error', describe(err));
  }
}

function stop() {
  clearInterval(state.timer);
  state.timer = null;
}

function start() {
  stop();
  refresh();
  state.timer = setInterval(refresh, REFRESH_MS);
}

function init() {
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.key = $('key').value.trim();
    sessionStorage.setItem(KEY_STORE, state.key);
    $('key').value = '';
    start();
  });
  $('user-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const user = $('user').value.trim();
    state.user = user || null;
    if (!user) return $('user-result').replaceChildren();
    lookUpUser(user).catch((err) => showError($('user-result'), err));
  });
  $('channel-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const channel = $('channel').value.trim();
    state.channel = channel || null;
    if (!channel) return $('channel-result').replaceChildren();
    lookUpChannel(channel).catch((err) => showError($('channel-result'), err));
  });
  start();
}

init();
