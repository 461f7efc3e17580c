// coffer's web dashboard (docs/DASHBOARD.md): plain JavaScript over the
// JSON API of the same origin, with the user's bearer token. The token is
// kept in sessionStorage (this tab, until it closes or signs out); the
// deployer key (coffer deployers export) only in this script's memory, as
// a non-extractable CryptoKey. A secret's value lives only in its input
// until seal.js seals it to the app's key; it is never sent, shown, stored
// or logged. Everything is written with textContent.
'use strict';

const TOKEN_KEY = 'coffer.token';
const $ = (id) => document.getElementById(id);
let poll = null; // the timer of the view being watched
let deployer = null; // CofferSeal.loadKeyFile's: the signing key and the keeper's key, this tab's memory only

function token() { return sessionStorage.getItem(TOKEN_KEY); }

// api(method, path, body): the parsed answer, or throws {status, message}.
async function api(method, path, body) {
  const opts = { method, headers: { Authorization: 'Bearer ' + token() }, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res, doc = null;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw { status: 0, message: 'cannot reach the api: ' + e.message };
  }
  try { doc = await res.json(); } catch (e) { doc = null; }
  if (!res.ok) {
    const msg = doc && doc.error ? doc.error.message : res.statusText;
    if (res.status === 401) signOut('signed out: ' + msg);
    throw { status: res.status, message: msg, doc };
  }
  return doc;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells, attrs) {
  const tr = document.createElement('tr');
  for (const c of cells) tr.appendChild(c instanceof Node ? (c.tagName === 'TD' ? c : wrap(c)) : el('td', c));
  for (const k in attrs || {}) tr.dataset[k] = attrs[k];
  return tr;
}
function wrap(node) { const td = el('td'); td.appendChild(node); return td; }
function fill(id, rows, empty, cols) {
  const tb = $(id);
  tb.replaceChildren(...rows);
  if (!rows.length) { const td = el('td', empty, 'note'); td.colSpan = cols; tb.appendChild(row([td])); }
}
function when(t) { return t ? t.replace('T', ' ').replace('Z', '') : '—'; }

function showError(e) {
  const p = $('error');
  if (!e) { p.hidden = true; p.textContent = ''; return; }
  p.textContent = (e.status === 403 ? 'Not allowed (403): ' : e.status ? 'Error ' + e.status + ': ' : '') + e.message;
  p.hidden = false;
}

function outcome(state, text) {
  const o = $('outcome');
  o.className = state || '';
  o.dataset.state = state || '';
  o.textContent = text || '';
  o.hidden = !text;
}

// The deployer key, loaded or not: set and unset need it (nothing is sent without it).
function keyLoaded(dep, why) {
  deployer = dep;
  const s = $('key-status');
  s.dataset.loaded = dep ? 'true' : 'false';
  s.className = dep ? 'ok' : 'bad';
  s.textContent = dep ? 'Deployer key loaded: ' + dep.id + ' (org ' + dep.org_id + ', app ' + dep.app_id + ').'
    : (why ? why + ' ' : '') + 'No deployer key loaded: set and unset are off (coffer deployers export FILE, then choose FILE).';
  $('secret-set').disabled = !dep;
  for (const b of document.querySelectorAll('button[data-unset]')) b.disabled = !dep;
}

function show(view) {
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== 'view-' + view;
  $('signout').hidden = view === 'signin';
  document.body.dataset.view = view;
}

function signOut(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  keyLoaded(null, '');
  $('who').textContent = why || '';
  location.hash = '#/signin';
}

// ---- views ----

async function viewApps() {
  show('apps');
  const doc = await api('GET', '/v1/apps');
  fill('apps', doc.apps.map((a) => {
    const link = el('a', a.name);
    link.href = '#/apps/' + encodeURIComponent(a.name) + '/secrets';
    return row([link, a.secrets_count, 'v' + a.secrets_version, when(a.created_at)], { app: a.name });
  }), 'no apps yet: coffer apps create NAME', 4);
}

async function tabSecrets(app) {
  const doc = await api('GET', '/v1/apps/' + app + '/secrets');
  $('secrets-version').textContent = 'Secrets version v' + doc.version;
  fill('secrets', doc.secrets.map((s) => {
    const unset = el('button', 'Unset');
    unset.type = 'button';
    unset.dataset.unset = s.name;
    unset.disabled = !deployer;
    unset.addEventListener('click', () => change(app, s.name, null));
    return row([s.name, el('td', s.digest, 'digest'), el('td', s.status, 'status-' + s.status), when(s.updated_at), unset],
               { name: s.name, digest: s.digest });
  }), 'no secrets', 5);
}

function progress(r) {
  const ms = r.machines || [];
  if (!ms.length) return '—';
  const done = ms.filter((m) => m.step === 'passed').length;
  return done + '/' + ms.length + ' passed' + ms.filter((m) => m.step !== 'passed').map((m) => ', ' + m.host + ' ' + m.step).join('');
}

async function tabReleases(app) {
  const doc = await api('GET', '/v1/apps/' + app + '/releases?limit=50');
  fill('releases', doc.releases.map((r) => row([
    'v' + r.version, el('td', r.status, 'status-' + r.status), 'v' + r.secrets_version, progress(r),
    el('td', r.reason || '', 'mono'), r.actor, when(r.created_at)], { version: r.version, status: r.status })),
  'no releases yet: coffer deploy', 7);
  return doc.releases.some((r) => r.status === 'pending' || r.status === 'running');
}

async function tabMachines(app) {
  const doc = await api('GET', '/v1/apps/' + app + '/machines');
  fill('machines', doc.machines.map((m) => row([
    el('td', m.id, 'mono'), m.host, m.release ? 'v' + m.release : '—', el('td', m.state, 'status-' + m.state),
    m.pid || '—', when(m.started_at),
    m.exit_signal ? 'signal ' + m.exit_signal : m.exit_status >= 0 ? 'status ' + m.exit_status : '—'], { id: m.id })),
  'no machines', 7);
}

async function tabAudit(app) {
  const v = $('audit-verify');
  try {
    const ok = await api('GET', '/v1/audit/verify');
    v.className = 'verify ok';
    v.dataset.ok = 'true';
    v.textContent = 'Audit chain verified: ' + ok.events + ' events, anchored by the keeper at seq ' + ok.head.seq + '.';
  } catch (e) {
    v.className = 'verify bad';
    v.dataset.ok = 'false';
    v.textContent = (e.status === 403 ? 'Not allowed (403): ' : 'Audit chain NOT verified (' + e.status + '): ') + e.message;
    if (e.status === 403) throw e;
  }
  // every page, oldest first, for this app; shown newest first
  let events = [], after = 0;
  for (let i = 0; i < 50 && after !== null; i++) {
    const doc = await api('GET', '/v1/audit?app=' + app + '&limit=1000' + (after ? '&after=' + after : ''));
    events = events.concat(doc.events).slice(-200);
    after = doc.next_after;
  }
  fill('audit', events.reverse().map((e) => row([
    e.seq, when(e.ts), e.actor, e.action, el('td', e.outcome, e.outcome === 'ok' ? 'ok' : 'bad'),
    el('td', JSON.stringify(e.detail), 'mono')], { seq: e.seq, action: e.action })), 'no events', 6);
}

const TABS = { secrets: tabSecrets, releases: tabReleases, machines: tabMachines, audit: tabAudit };

async function viewApp(app, tab) {
  show('app');
  $('app-name').textContent = decodeURIComponent(app);
  for (const a of document.querySelectorAll('#tabs a')) {
    a.href = '#/apps/' + app + '/' + a.dataset.tab;
    a.classList.toggle('active', a.dataset.tab === tab);
  }
  for (const t of document.querySelectorAll('.tab')) t.hidden = t.id !== 'tab-' + tab;
  document.body.dataset.tab = tab;
  const busy = await TABS[tab](app);
  // a release in progress: watch it
  if (busy) poll = setTimeout(route, 1000);
}

// ---- set and unset ----

function confirmDialog(text) {
  return new Promise((resolve) => {
    const d = $('confirm');
    $('confirm-text').textContent = text;
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = '';
    d.showModal();
  });
}

const SIGN_TRIES = 4; // as the CLI (sign.h): another change won the race, read and sign again

// change(app, name, value): sets (value a string) or unsets (null) one
// secret after a confirmation, sealed and signed here (seal.js), then
// follows the release it makes.
async function change(app, name, value) {
  const what = value === null ? 'Unset ' + name : 'Set ' + name;
  if (!deployer) {
    outcome('error', what + ': no deployer key loaded, nothing was sent.');
    return;
  }
  const ok = await confirmDialog(what + ' on ' + decodeURIComponent(app) +
    '? The change rolls out at once: a new release restarts the app\'s machines.');
  if (!ok) { outcome('', ''); return; }
  showError(null);
  outcome('pending', what + ': sealing and signing…');
  let doc;
  try {
    for (let attempt = 1; ; attempt++) {
      const st = await api('GET', '/v1/apps/' + app + '/secrets/sealing');
      const body = await CofferSeal.changeBody(st, deployer, { [name]: value }, false);
      try {
        doc = await api('POST', '/v1/apps/' + app + '/secrets', body);
        break;
      } catch (e) {
        if (!(e.status === 409 && /changed meanwhile/.test(e.message)) || attempt === SIGN_TRIES) throw e;
      }
    }
  } catch (e) {
    outcome('error', what + ' failed' + (e.status ? ' (' + e.status + ')' : '') + ': ' + e.message);
    return;
  } finally {
    value = null;
  }
  if (doc.status !== 'deploying') {
    outcome('succeeded', what + ': secrets version v' + doc.version + ', ' + doc.status +
      (doc.message ? ' (' + doc.message + ')' : ''));
    route();
    return;
  }
  await follow(app, what, doc.release, doc.version);
}

async function follow(app, what, version, secrets) {
  for (;;) {
    let r;
    try {
      r = await api('GET', '/v1/apps/' + app + '/releases/' + version);
    } catch (e) {
      outcome('error', what + ': cannot follow release v' + version + ' (' + e.status + '): ' + e.message);
      return;
    }
    if (r.status === 'succeeded') {
      outcome('succeeded', what + ': release v' + version + ' succeeded (secrets version v' + secrets + ').');
      break;
    }
    if (r.status === 'failed') {
      outcome('failed', what + ': release v' + version + ' failed: ' + (r.reason || 'no reason given'));
      break;
    }
    outcome('pending', what + ': release v' + version + ' ' + r.status + ', ' + progress(r));
    if (document.body.dataset.tab === 'secrets' || document.body.dataset.tab === 'releases') route();
    await new Promise((ok) => setTimeout(ok, 1000));
  }
  route();
}

// ---- routing: #/signin, #/apps, #/apps/NAME/TAB ----

// The one pattern of a page's hash: the app (the api's name rule) and the tab.
const ROUTE = /^#\/apps\/([a-z][a-z0-9-]*)\/(secrets|releases|machines|audit)$/;

async function route() {
  clearTimeout(poll);
  if (!token()) { show('signin'); return; }
  const m = location.hash.match(ROUTE);
  try {
    if (m) await viewApp(m[1], m[2]);
    else await viewApps();
    showError(null);
  } catch (e) {
    showError(e);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    $('token').value = '';
    sessionStorage.setItem(TOKEN_KEY, t);
    try {
      await api('GET', '/v1/apps');
      $('who').textContent = 'signed in';
      outcome('', '');
      if (location.hash === '#/apps') route(); else location.hash = '#/apps';
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      showError(e);
    }
  });
  $('signout').addEventListener('click', () => signOut('signed out'));
  keyLoaded(null, '');
  $('key-file').addEventListener('change', async () => {
    const input = $('key-file');
    const file = input.files[0];
    input.value = '';
    if (!file) return;
    if (file.size > 4096) { keyLoaded(null, 'Not loaded: ' + file.name + ' is larger than a key file (4 KiB).'); return; }
    try {
      keyLoaded(await CofferSeal.loadKeyFile(await file.text()), '');
    } catch (e) {
      keyLoaded(null, 'Not loaded: ' + e.message + '.');
    }
  });
  $('set-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('secret-value');
    const value = input.value;
    input.value = '';
    const m = location.hash.match(ROUTE);
    if (m) change(m[1], $('secret-name').value.trim(), value);
  });
  window.addEventListener('hashchange', () => { outcome('', ''); route(); });
  if (token()) $('who').textContent = 'signed in';
  route();
});
