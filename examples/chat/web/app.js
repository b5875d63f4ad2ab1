// The chat page: messages and typing events go to the chat API; what the
// hub (the bus's consumer) receives comes back over Server-Sent Events
// from /api/v1/stream, with the transport that carried each event and its
// latency, and so does the routing state of the bus.
'use strict';

const TYPING_TTL_MS = 3000; // an indicator lasts this long after the last typing event

const params = new URLSearchParams(location.search);
const conversation = params.get('c') || 'demo';
const names = ['Ada', 'Grace', 'Linus', 'Barbara', 'Ken', 'Radia', 'Dennis', 'Frances'];
let me = params.get('name') || sessionStorage.getItem('chat.name') ||
  names[Math.floor(Math.random() * names.length)] + '-' + Math.floor(Math.random() * 100);
sessionStorage.setItem('chat.name', me);

const $ = (id) => document.getElementById(id);
const messages = $('messages');
const typing = $('typing');
const text = $('text');
const nameInput = $('name');
$('conversation').textContent = conversation;
nameInput.value = me;
nameInput.addEventListener('change', () => {
  const v = nameInput.value.trim();
  if (v) {
    me = v;
    sessionStorage.setItem('chat.name', me);
  }
  nameInput.value = me;
});

function post(path, body) {
  return fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  }).then((r) => {
    if (!r.ok) {
      return r.json().then((e) => { throw new Error(e.error || r.statusText); });
    }
  }).catch((err) => showStatus('error: ' + err.message, 'connecting'));
}

// Every keystroke is a typing event: the bus coalesces them per
// conversation (the first at once, the latest at the window's end).
text.addEventListener('input', () => {
  if (text.value !== '') {
    post('/api/v1/requests/' + encodeURIComponent(conversation) + '/typing', { user: me });
  }
});

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const content = text.value.trim();
  if (content === '') return;
  text.value = '';
  post('/api/v1/messages', { request_id: conversation, content: content, user: me });
});

// className keeps a transport name usable as a CSS class.
function className(name) {
  return String(name).toLowerCase().replace(/[^a-z0-9_-]/g, '') || 'unknown';
}

function formatLatency(ms) {
  if (ms < 1) return Math.round(ms * 1000) + ' µs';
  if (ms < 1000) return ms.toFixed(1) + ' ms';
  return (ms / 1000).toFixed(2) + ' s';
}

function el(tag, cls, textContent) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (textContent !== undefined) e.textContent = textContent;
  return e;
}

const seen = new Set(); // delivery is at least once: show each message once

function showMessage(d) {
  if (seen.has(d.id)) return;
  seen.add(d.id);
  const li = el('li', 'message' + (d.user === me ? ' own' : ''));
  li.dataset.id = d.id;
  li.dataset.transport = d.transport;
  li.appendChild(el('div', 'user', d.user || 'anonymous'));
  li.appendChild(el('div', 'content', d.content));
  const meta = el('div', 'meta');
  meta.appendChild(document.createTextNode('via '));
  meta.appendChild(el('span', 'transport ' + className(d.transport), d.transport));
  meta.appendChild(document.createTextNode(' · '));
  meta.appendChild(el('span', 'latency', formatLatency(d.latency_ms)));
  meta.title = 'published ' + d.published_at + '; publish → hub ' + d.latency_ms + ' ms';
  li.appendChild(meta);
  messages.appendChild(li);
  messages.scrollTop = messages.scrollHeight;
}

const typers = new Map(); // user → {timer, transport}
// lastSent is when each user's latest message was published: a typing
// event published before it (a coalescing window's trailing edge, which
// can arrive after the message) is stale.
const lastSent = new Map();

// publishedAt makes an event's published_at (RFC 3339 in UTC, up to
// nanoseconds, as Go writes it) a string that sorts by time.
function publishedAt(d) {
  const s = String(d.published_at || '');
  const m = /^(.*?)(?:\.(\d{1,9}))?Z$/.exec(s);
  return m ? m[1] + '.' + (m[2] || '').padEnd(9, '0') + 'Z' : s;
}

function renderTyping() {
  if (typers.size === 0) {
    typing.hidden = true;
    typing.textContent = '';
    return;
  }
  const who = [...typers.keys()];
  typing.textContent = who.join(', ') + (who.length === 1 ? ' is' : ' are') + ' typing…';
  typing.dataset.transport = [...typers.values()].map((t) => t.transport).join(',');
  typing.hidden = false;
}

function showTyping(d) {
  const user = d.user || 'someone';
  if (user === me) return;
  if (publishedAt(d) <= (lastSent.get(user) || '')) return;
  const prev = typers.get(user);
  if (prev) clearTimeout(prev.timer);
  typers.set(user, {
    transport: d.transport,
    timer: setTimeout(() => { typers.delete(user); renderTyping(); }, TYPING_TTL_MS),
  });
  renderTyping();
}

function stopTyping(user) {
  const t = typers.get(user || 'someone');
  if (!t) return;
  clearTimeout(t.timer);
  typers.delete(user || 'someone');
  renderTyping();
}

function renderRouting(r) {
  const sw = $('switch');
  sw.textContent = r.enabled ? 'on' : 'off';
  sw.className = 'pill ' + (r.enabled ? 'on' : 'off');
  $('percentage').textContent = r.candidate
    ? r.percentage + ' %' + (r.enabled ? '' : ' (inactive: switch off)')
    : 'no candidate';
  $('route').textContent = r.baseline + (r.candidate ? ' → ' + r.candidate : '');
  const recent = r.fallback.recent > 0 ? ' · ' + r.fallback.recent + ' taken over' : '';
  $('fallback').textContent = (r.fallback.enabled ? 'on, to ' + r.fallback.to : 'off') + recent;
  const breakers = Object.entries(r.breakers || {}).map(([t, s]) => t + ' ' + s);
  $('breakers').textContent = breakers.length ? breakers.join(', ') : '—';
  $('reloads').textContent = String(r.reloads);
  $('window').textContent = r.window_seconds >= 59.5 ? 'minute' : Math.round(r.window_seconds) + ' s';
  const split = $('split');
  split.replaceChildren();
  for (const s of r.split || []) {
    const li = el('li', 'row');
    li.dataset.transport = s.transport;
    li.dataset.events = String(s.events);
    li.appendChild(el('span', 'transport ' + className(s.transport), s.transport));
    const bar = el('span', 'bar');
    const fill = el('span', 'fill ' + className(s.transport));
    fill.style.width = s.percent.toFixed(1) + '%';
    bar.appendChild(fill);
    li.appendChild(bar);
    li.appendChild(el('span', 'count', s.events + ' · ' + Math.round(s.percent) + ' %'));
    split.appendChild(li);
  }
  $('routing').dataset.enabled = String(r.enabled);
  $('routing').dataset.percentage = String(r.percentage);
}

function showStatus(label, cls) {
  const s = $('status');
  s.textContent = label;
  s.className = 'status ' + cls;
}

const source = new EventSource('/api/v1/stream');
source.addEventListener('open', () => showStatus('live', 'live'));
source.addEventListener('error', () => showStatus('reconnecting…', 'connecting'));
source.addEventListener('delivery', (ev) => {
  const d = JSON.parse(ev.data);
  if (d.conversation !== conversation) return;
  if (d.type === 'typing') {
    showTyping(d);
  } else if (d.type === 'chat_message') {
    const user = d.user || 'someone';
    const at = publishedAt(d);
    if (at > (lastSent.get(user) || '')) lastSent.set(user, at);
    stopTyping(d.user);
    showMessage(d);
  }
});
source.addEventListener('routing', (ev) => renderRouting(JSON.parse(ev.data)));
