// The extension in real headless Firefox (Debian's firefox-esr, over WebDriver BiDi; see
// firefox.mjs), against the same strict stand-in server as the Chromium test. Every host
// resolves to 127.0.0.1 (network.dns.forceResolve), and the background script is suspended
// after 5 s idle instead of 30 s, so it is asleep whenever the alarm has to wake it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStub } from '../stub-server.mjs';

const EXT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIREFOX = process.env.FIREFOX ?? '/usr/bin/firefox-esr';
const ADDON_ID = JSON.parse(fs.readFileSync(path.join(EXT, 'manifest.json'), 'utf8')).browser_specific_settings.gecko.id;
// Fixed, so the test knows the options page's address (moz-extension://<uuid>/options.html).
const UUID = '6f0c1a2b-3d4e-4f50-8a6b-7c8d9e0f1a2b';
const OPTIONS_URL = `moz-extension://${UUID}/options.html`;
const TOKEN = `e2e-${Math.random().toString(36).slice(2)}-token`;
const BROWSER_NAME = 'Test Firefox';
const ALARM_WAIT_MS = 75_000;
const EVENT_WAIT_MS = 15_000;
const ARTIFACTS = process.env.EXTENSION_ARTIFACTS ?? fs.mkdtempSync(path.join(os.tmpdir(), 'netmon-ext-artifacts-'));

let ff;
let stub;
let received;
let pages;
let pagePort;
let optionsCtx;
let tabCtx;
const pagesServed = [];

async function waitFor(what, timeoutMs, cond) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) {
      throw new Error(
        `gave up after ${timeoutMs} ms waiting for ${what}; the stand-in received heartbeats ${JSON.stringify(
          received.heartbeats,
        )}, observations ${JSON.stringify(received.observations)}, refusals ${JSON.stringify(received.refusals)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const url = (host, rest = '/') => `http://${host}:${pagePort}${rest}`;
const heartbeatsFor = (host) => received.heartbeats.filter((h) => h.host === host);
const options = (expr) => ff.evaluate(optionsCtx, expr);

before(async () => {
  if (!fs.existsSync(FIREFOX)) {
    throw new Error(`${FIREFOX} is missing: this test needs Debian's firefox-esr (bash tests/install-deps.sh installs it)`);
  }
  let launchFirefox;
  try {
    ({ launchFirefox } = await import('./firefox.mjs'));
  } catch (e) {
    throw new Error(`the ws package is missing (${e.message}): run \`npm ci\` in extension/ (bash tests/install-deps.sh does)`);
  }
  received = { heartbeats: [], observations: [], requests: [], refusals: [] };
  stub = await startStub({ token: TOKEN, received });
  pages = http.createServer((req, res) => {
    pagesServed.push(`${req.headers.host}${req.url}`);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>${req.headers.host}</title><h1>Page on ${req.headers.host}</h1>`);
  });
  await new Promise((r) => pages.listen(0, '127.0.0.1', r));
  pagePort = pages.address().port;
  ff = await launchFirefox({
    executable: FIREFOX,
    prefs: {
      // Every name resolves to loopback: the test hosts, and whatever Firefox itself tries.
      'network.dns.forceResolve': '127.0.0.1',
      'network.proxy.type': 0,
      'extensions.webextensions.uuids': JSON.stringify({ [ADDON_ID]: UUID }),
      // Suspend the background after 5 s idle instead of 30 s: it sleeps between alarms (30 s), so
      // only the alarm can extend a stay. (Well above the tracker's 1 s send delay, as 30 s is in
      // real use: a timer does not keep a background alive.)
      'extensions.background.idle.timeout': 5000,
      'browser.shell.checkDefaultBrowser': false,
      'browser.startup.page': 0,
      'browser.startup.homepage_override.mstone': 'ignore',
      'app.update.enabled': false,
      'extensions.update.enabled': false,
      'extensions.getAddons.cache.enabled': false,
      'datareporting.policy.dataSubmissionEnabled': false,
      'toolkit.telemetry.enabled': false,
      'browser.safebrowsing.malware.enabled': false,
      'browser.safebrowsing.phishing.enabled': false,
      'network.captive-portal-service.enabled': false,
      'network.connectivity-service.enabled': false,
      'browser.newtabpage.enabled': false,
    },
  });
  const r = await ff.send('webExtension.install', { extensionData: { type: 'path', path: EXT } });
  assert.equal(r.extension, ADDON_ID);
});

after(async () => {
  await ff?.close();
  await new Promise((r) => (pages ? pages.close(r) : r()));
  await stub?.close();
});

test('on install the options page opens; pasting the token connects', async (t) => {
  optionsCtx = await waitFor('the options page to open by itself', EVENT_WAIT_MS, async () => {
    const tree = await ff.send('browsingContext.getTree', {});
    return tree.contexts.find((c) => c.url === OPTIONS_URL)?.context;
  });
  await waitFor('the options page to load', EVENT_WAIT_MS, () => options(`document.getElementById('guess').textContent !== ''`));
  assert.equal(await options(`document.getElementById('browser').value`), 'Firefox', 'the guessed name');
  await options(`(() => {
    document.getElementById('server').value = ${JSON.stringify(stub.origin)};
    document.getElementById('token').value = ${JSON.stringify(TOKEN)};
    document.getElementById('browser').value = ${JSON.stringify(BROWSER_NAME)};
    document.getElementById('save').click();
  })()`);
  const status = await waitFor('the status to say connected', EVENT_WAIT_MS, async () => {
    const s = await options(`document.getElementById('status').className + ' ' + document.getElementById('status-text').textContent`);
    return s.startsWith('status status-ok') ? s : null;
  });
  assert.match(status, /Connected to netmon 0\.1\.0-stub at http:\/\/127\.0\.0\.1:\d+/);
  assert.match(await options(`document.getElementById('perm-state').textContent`), /^Granted/);
  const shot = await ff.send('browsingContext.captureScreenshot', { context: optionsCtx, origin: 'document' });
  const file = path.join(ARTIFACTS, 'options-firefox.png');
  fs.writeFileSync(file, Buffer.from(shot.data, 'base64'));
  t.diagnostic(`screenshot: ${file}`);
});

test("the active tab's host is reported with its server address, never its path or query", async () => {
  tabCtx = (await ff.send('browsingContext.create', { type: 'tab' })).context;
  await ff.send('browsingContext.navigate', { context: tabCtx, url: url('alpha.test', '/secret-path?q=secret-query'), wait: 'complete' });
  const hb = await waitFor('a heartbeat for alpha.test', EVENT_WAIT_MS, () => heartbeatsFor('alpha.test')[0]);
  assert.equal(hb.browser, BROWSER_NAME);
  assert.equal(hb.private, false);
  const obs = await waitFor('an observation for alpha.test', EVENT_WAIT_MS, () => received.observations.find((o) => o.host === 'alpha.test'));
  assert.equal(obs.ip, '127.0.0.1');
});

test('a URL change in the same tab is a new host', async () => {
  await ff.send('browsingContext.navigate', { context: tabCtx, url: url('beta.test', '/other'), wait: 'complete' });
  await waitFor('a heartbeat for beta.test', EVENT_WAIT_MS, () => heartbeatsFor('beta.test')[0]);
  assert.ok(heartbeatsFor('alpha.test').some((h) => h.duration > 0), 'alpha.test got its length when it ended');
});

test('a stay is reported throughout by the alarm, with the background suspended after 5 s idle', async () => {
  const start = heartbeatsFor('beta.test')[0];
  await waitFor('beta.test extended by the alarm', ALARM_WAIT_MS, () =>
    heartbeatsFor('beta.test').find((h) => h.time === start.time && h.duration >= 5),
  );
});

test('every request carried the token and the extension origin; nothing refused, no path sent', () => {
  assert.ok(received.requests.length >= 4, `${received.requests.length} requests`);
  for (const r of received.requests) {
    assert.equal(r.headers.authorization, `Bearer ${TOKEN}`);
    if (r.headers.origin !== undefined) assert.equal(r.headers.origin, `moz-extension://${UUID}`);
    assert.doesNotMatch(r.body, /secret|\/other/, `${r.path}: ${r.body}`);
    assert.ok(!r.body.includes(`:${pagePort}`), `${r.path} carries the page port`);
  }
  assert.deepEqual(received.refusals, []);
  assert.ok(pagesServed.some((p) => p.includes('/secret-path?q=secret-query')));
});
