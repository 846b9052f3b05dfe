// The wsgate chat demo: one page, plain ES modules, on @wsgate/client (served next to it as
// client/wsgate-client.mjs). It shows what an application gets from wsgate: channels with
// history and resume, presence with join/leave, direct messages, and a session that survives
// a gateway dying (the badge goes reconnecting -> resumed and nothing is lost or doubled).
import { WsgateClient } from './client/wsgate-client.mjs';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const DM = '@direct'; // the pseudo-channel that holds direct messages in the log

/** @type {WsgateClient|null} */
let client = null;
let epoch = null;       // the epoch of the last welcome: same epoch on a reconnect = resumed
let current = null;     // the channel shown
/** @type {Map<string, {entries: any[], members: Set<string>, unread: number}>} */
const rooms = new Map();

function defaultUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

// For a look from the browser's console (and the browser test): the client and every state
// the badge showed, in order.
const demo = { client: null, states: [] };
window.wsgateDemo = demo;

function setBadge(state, title) {
  demo.states.push(state);
  const b = $('badge');
  b.dataset.state = state;
  b.textContent = state;
  b.title = title || state;
}

function room(name) {
  let r = rooms.get(name);
  if (!r) {
    r = { entries: [], members: new Set(), unread: 0 };
    rooms.set(name, r);
  }
  return r;
}

// ---- rendering ----------------------------------------------------------------------------

function renderChannels() {
  const ul = $('channels');
  ul.replaceChildren();
  for (const [name, r] of rooms) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = name === DM ? 'direct messages' : name;
    b.dataset.channel = name;
    if (name === current) b.classList.add('current');
    if (r.unread) {
      const u = document.createElement('span');
      u.className = 'unread';
      u.textContent = String(r.unread);
      b.append(' ', u);
    }
    b.addEventListener('click', () => show(name));
    li.append(b);
    if (name !== DM) {
      const leave = document.createElement('button');
      leave.type = 'button';
      leave.className = 'leave';
      leave.textContent = '×';
      leave.title = `leave ${name}`;
      leave.addEventListener('click', () => leaveChannel(name));
      li.append(leave);
    }
    ul.append(li);
  }
}

function entryItem(e) {
  const li = document.createElement('li');
  li.className = e.kind;
  if (e.seq !== undefined) li.dataset.seq = String(e.seq);
  if (e.from) li.dataset.from = e.from;
  if (e.from) {
    const who = document.createElement('b');
    who.textContent = e.from;
    li.append(who, ' ');
  }
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = e.text;
  li.append(text);
  if (e.ts) {
    const t = document.createElement('time');
    t.dateTime = new Date(e.ts).toISOString();
    t.textContent = new Date(e.ts).toLocaleTimeString();
    li.append(' ', t);
  }
  return li;
}

function renderLog() {
  const r = current ? rooms.get(current) : null;
  $('room-title').textContent = !current ? 'No channel' : current === DM ? 'Direct messages'
    : current;
  const log = $('log');
  log.replaceChildren(...(r ? r.entries.map(entryItem) : []));
  log.scrollTop = log.scrollHeight;
  $('send-form').hidden = !current || current === DM;
}

function renderPresence() {
  const ul = $('presence');
  ul.replaceChildren();
  const r = current && current !== DM ? rooms.get(current) : null;
  for (const u of r ? [...r.members].sort() : []) {
    const li = document.createElement('li');
    li.textContent = u;
    li.dataset.user = u;
    ul.append(li);
  }
}

function renderPositions() {
  if (!client) return;
  const p = client.positions;
  const rows = [['epoch', p.epoch ?? '—'], ['user', p.user], ['broadcast', p.broadcast]];
  for (const [name, c] of Object.entries(client.channelPositions)) {
    rows.push([name, c.position ?? '—']);
  }
  $('positions').tBodies[0].replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement('tr');
    tr.dataset.stream = k;
    const a = document.createElement('th');
    a.textContent = k;
    const b = document.createElement('td');
    b.textContent = String(v);
    tr.append(a, b);
    return tr;
  }));
}

function add(name, entry) {
  const r = room(name);
  r.entries.push(entry);
  if (r.entries.length > 500) r.entries.shift();
  if (name === current) {
    const log = $('log');
    log.append(entryItem(entry));
    while (log.children.length > 500) log.firstElementChild.remove();
    log.scrollTop = log.scrollHeight;
  } else {
    r.unread++;
    renderChannels();
  }
  renderPositions();
}

function show(name) {
  current = name;
  const r = rooms.get(name);
  if (r) r.unread = 0;
  renderChannels();
  renderLog();
  renderPresence();
}

const textOf = (content) => (typeof content === 'string' ? content : JSON.stringify(content));

// ---- channels -----------------------------------------------------------------------------

function joinChannel(name) {
  if (!client || !name || rooms.has(name) && name !== DM) {
    if (name) show(name);
    return;
  }
  room(name);
  client.subscribe(name, (f) => {
    add(name, { kind: 'publication', from: f.from, text: textOf(f.content), ts: f.ts,
      seq: f.seq });
  });
  show(name);
}

function leaveChannel(name) {
  client?.unsubscribe(name);
  rooms.delete(name);
  if (current === name) current = rooms.keys().next().value ?? null;
  renderChannels();
  renderLog();
  renderPresence();
  renderPositions();
}

// ---- the session --------------------------------------------------------------------------

// url: one gateway URL, or several separated by commas (the client rotates over them when
// one is lost)
function start({ name, token, url }) {
  // the gateway that served the page (listed first) first, then the others
  const opts = { urls: url.split(',').map((u) => u.trim()).filter(Boolean), batch: true,
    randomStart: false };
  if (token) opts.token = token;
  else opts.userId = name;
  client = new WsgateClient(opts);
  demo.client = client;
  client.on('state', ({ state, delayMs }) => {
    if (state === 'open') return; // the welcome decides between open and resumed
    setBadge(state, state === 'reconnecting' && delayMs !== undefined
      ? `reconnecting in ${Math.round(delayMs)} ms` : state);
  });
  client.on('welcome', (f) => {
    const resumed = client.stats.connects > 1 && epoch !== null && String(f.epoch) === String(epoch);
    epoch = f.epoch;
    setBadge(resumed ? 'resumed' : 'open', `node ${f.node}, connection ${f.conn_id}`);
    $('me').textContent = f.user;
    $('me').dataset.user = f.user;
    renderPositions();
  });
  client.on('subscribed', (f) => {
    client.presence(f.channel);
    renderPositions();
  });
  client.on('presence', (f) => {
    const r = rooms.get(f.channel);
    if (!r) return;
    r.members = new Set(f.users || []);
    if (f.channel === current) renderPresence();
  });
  // join / leave frames: a user's first subscription to a channel opened, its last closed
  const membership = (joined) => (f) => {
    const r = rooms.get(f.channel);
    if (!r) return;
    if (joined) r.members.add(f.user);
    else r.members.delete(f.user);
    add(f.channel, { kind: joined ? 'join' : 'leave', text: `${f.user} ${joined ? 'joined' : 'left'}` });
    if (f.channel === current) renderPresence();
  };
  client.on('join', membership(true));
  client.on('leave', membership(false));
  client.on('message', (f) => {
    add(DM, { kind: 'message', from: f.from, text: textOf(f.content), ts: f.ts, seq: f.seq });
  });
  client.on('broadcast', (f) => {
    for (const name of rooms.keys()) {
      add(name, { kind: 'broadcast', from: f.from, text: textOf(f.content), ts: f.ts });
    }
  });
  client.on('resync', ({ stream, frame }) => {
    const where = frame.channel || (stream === 'user' ? DM : null);
    if (where && rooms.has(where)) {
      add(where, { kind: 'notice', text: 'history could not fill a gap: some messages were lost' });
    }
  });
  client.on('error', (f) => {
    const where = f.channel && rooms.has(f.channel) ? f.channel : current;
    if (where) add(where, { kind: 'notice', text: `error ${f.code}: ${f.message ?? ''}` });
    if (f.local) setBadge('closed', f.message);
  });
  room(DM);
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  setBadge('connecting');
  client.connect();
  const channels = (params.get('channels') || 'chat:general').split(',').filter(Boolean);
  for (const c of channels) joinChannel(c);
  show(channels[0] ?? DM);
}

// ---- forms --------------------------------------------------------------------------------

$('url').value = params.get('url') || defaultUrl();
$('name').value = params.get('name') || '';

$('signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = $('name').value.trim();
  const token = $('token').value.trim();
  if (!name && !token) {
    $('name').focus();
    return;
  }
  start({ name, token, url: $('url').value.trim() || defaultUrl() });
});

$('signout').addEventListener('click', () => {
  client?.close();
  location.search = '';
});

$('join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = $('join-name').value.trim();
  $('join-name').value = '';
  joinChannel(name);
});

$('send-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('text').value;
  if (!text || !current || current === DM) return;
  if (client.publish(current, text) !== false) $('text').value = '';
  else add(current, { kind: 'notice', text: 'not connected: not sent' });
});

$('dm-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const to = $('dm-to').value.trim();
  const text = $('dm-text').value;
  if (!to || !text) return;
  if (client.sendMessage(to, text) !== false) {
    $('dm-text').value = '';
    add(DM, { kind: 'sent', from: `→ ${to}`, text });
  } else {
    add(DM, { kind: 'notice', text: 'not connected: not sent' });
  }
});

// ?name=alice&autoconnect=1 signs in at once (the browser test and shared links use it)
if (params.get('autoconnect') && ($('name').value || params.get('token'))) {
  start({ name: $('name').value, token: params.get('token') || '', url: $('url').value });
}
