// The options page: settings, connection status, permissions, and what is sent.
//
// Settings are saved to storage.local under "settings"; the background worker listens for
// the change and sends what is queued at once. The status comes from `GET /v1/status`, asked
// on open, after each save, on "Check now" and every 10 s while the page is open.

import { serverOrigin, DEFAULT_SERVER } from './lib/host.js';
import { guessBrowserName } from './lib/browser-name.js';
import { call, describe } from './lib/client.js';
import { DEFAULT_SETTINGS } from './lib/tracker.js';

const api = globalThis.browser ?? globalThis.chrome;
const $ = (id) => document.getElementById(id);
const isFirefox = typeof globalThis.browser !== 'undefined' && typeof api.runtime.getBrowserInfo === 'function';

let saved = { ...DEFAULT_SETTINGS };

async function guess() {
  let browserInfo;
  try {
    browserInfo = await api.runtime.getBrowserInfo?.();
  } catch {
    // Chromium has none.
  }
  return guessBrowserName({
    browserInfo,
    brands: navigator.userAgentData?.brands,
    isBrave: Boolean(navigator.brave),
    userAgent: navigator.userAgent,
  });
}

function showError(field, message) {
  const input = $(field);
  const err = $(`${field}-error`);
  if (message) {
    input.setAttribute('aria-invalid', 'true');
    err.textContent = message;
    err.hidden = false;
  } else {
    input.removeAttribute('aria-invalid');
    err.textContent = '';
    err.hidden = true;
  }
}

function setStatus(kind, text, detail = '') {
  $('status').className = `status status-${kind}`;
  $('status-text').textContent = text;
  $('status-detail').textContent = detail;
}

async function checkStatus() {
  let origin;
  try {
    origin = serverOrigin(saved.server);
  } catch (e) {
    setStatus('bad', 'Not connected', e.message);
    return;
  }
  if (!saved.token) {
    setStatus('warn', 'Not connected yet', 'Paste the access token below and save.');
    return;
  }
  const result = await call({ origin, token: saved.token, method: 'GET', path: '/v1/status' });
  if (result.status === 200 && result.json?.ok === true) {
    const j = result.json;
    const version = typeof j.version === 'string' ? ` ${j.version}` : '';
    if (j.protocol !== 1) {
      setStatus('warn', `Connected to netmon${version}`, `It speaks protocol ${j.protocol}, this extension protocol 1: update the older one.`);
    } else if (j.recorder && j.recorder.running === false) {
      setStatus('warn', `Connected to netmon${version}`, 'No recorder is running, so no bytes are measured: start "netmon record".');
    } else {
      const source = typeof j.recorder?.source === 'string' ? ` (source: ${j.recorder.source})` : '';
      setStatus('ok', `Connected to netmon${version} at ${origin}`, `The recorder is running${source}.`);
    }
    return;
  }
  setStatus('bad', 'Not connected', describe(result));
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

async function showQueue() {
  const got = await api.storage.local.get(['heartbeats', 'observations', 'delivery']);
  const hb = got.heartbeats?.items?.length ?? 0;
  const obs = got.observations?.items?.length ?? 0;
  $('queued').textContent = `${hb} heartbeat${hb === 1 ? '' : 's'}, ${obs} server address${obs === 1 ? '' : 'es'}`;
  const d = got.delivery ?? {};
  $('last-ok').textContent = d.lastOkAt ? `${new Date(d.lastOkAt).toLocaleTimeString()} (${ago(d.lastOkAt)})` : 'never';
  const dropped = (got.heartbeats?.dropped ?? 0) + (got.observations?.dropped ?? 0);
  const problems = [];
  if (d.lastError) problems.push(`${d.lastError.message} (${ago(d.lastError.at)})`);
  if (dropped) problems.push(`${dropped} reports dropped while netmon was unreachable (queue full)`);
  $('last-error').textContent = problems.length ? problems.join('; ') : 'none';
}

async function showPermissions() {
  const all = { origins: ['<all_urls>'] };
  const granted = await api.permissions.contains(all);
  $('perm-state').textContent = granted
    ? 'Granted: the extension can see which server each website was loaded from and can reach netmon serve.'
    : 'Not granted: the extension cannot see which server each website was loaded from, and may not reach netmon serve. Grant access to all websites (it only reads server addresses; it changes nothing).';
  $('grant').hidden = granted;
  let incognito = false;
  try {
    incognito = await api.extension.isAllowedIncognitoAccess();
  } catch {
    // Unknown: say how to check.
  }
  $('private-access').textContent = incognito
    ? 'it may.'
    : isFirefox
      ? 'it may not (about:addons → netmon → "Run in Private Windows": Allow).'
      : 'it may not (the browser\'s extensions page → netmon → Details → "Allow in Incognito").';
}

function fill(s, guessed) {
  $('server').value = s.server || DEFAULT_SERVER;
  $('token').value = s.token || '';
  $('browser').value = s.browser || guessed;
  $('private').checked = Boolean(s.reportPrivate);
  $('guess').textContent = guessed;
}

async function save(ev) {
  ev.preventDefault();
  let ok = true;
  let server;
  try {
    server = serverOrigin($('server').value);
    showError('server', '');
  } catch (e) {
    showError('server', e.message);
    ok = false;
  }
  const token = $('token').value.trim();
  if (/\s/.test(token)) {
    showError('token', 'A token has no spaces: copy exactly what "netmon serve --print-token" prints.');
    ok = false;
  } else {
    showError('token', '');
  }
  const browser = $('browser').value.trim() || $('guess').textContent;
  if (browser.length > 64) {
    showError('browser', 'At most 64 characters.');
    ok = false;
  } else {
    showError('browser', '');
  }
  if (!ok) {
    $('saved').textContent = 'Not saved: see above.';
    return;
  }
  saved = { server, token, browser, reportPrivate: $('private').checked };
  await api.storage.local.set({ settings: saved });
  $('server').value = server;
  $('browser').value = browser;
  $('saved').textContent = 'Saved.';
  setTimeout(() => ($('saved').textContent = ''), 3000);
  await checkStatus();
}

async function main() {
  const guessed = await guess();
  const got = await api.storage.local.get('settings');
  saved = { ...DEFAULT_SETTINGS, ...(got.settings ?? {}) };
  fill(saved, guessed);
  $('settings').addEventListener('submit', save);
  $('check').addEventListener('click', () => checkStatus());
  $('show-token').addEventListener('click', () => {
    const shown = $('token').type === 'text';
    $('token').type = shown ? 'password' : 'text';
    $('show-token').textContent = shown ? 'Show' : 'Hide';
    $('show-token').setAttribute('aria-pressed', String(!shown));
  });
  $('grant').addEventListener('click', async () => {
    // Must run in the click handler: browsers only ask the user during a gesture.
    await api.permissions.request({ origins: ['<all_urls>'] }).catch(() => false);
    await showPermissions();
    await checkStatus();
  });
  api.storage.onChanged.addListener((changes, area) => {
    if (area === 'local' && (changes.heartbeats || changes.observations || changes.delivery)) showQueue();
  });
  await Promise.all([showQueue(), showPermissions(), checkStatus()]);
  setInterval(() => {
    checkStatus();
    showQueue();
  }, 10_000);
}

main().catch((e) => setStatus('bad', 'The options page failed to load', String(e)));
