// The extension in real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser is downloaded). Pages are served on loopback under test host
// names that --host-resolver-rules maps to 127.0.0.1; a stand-in netmon serve
// (test/stub-server.mjs, strict about PROTOCOL.md) records what the extension sends.
//
// One browser session walks through the whole story in order, because each step builds on the
// state the previous one left (settings saved, a tab open, a worker stopped, …). Every wait
// polls against a deadline and says what it was waiting for when it gives up.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStub } from '../stub-server.mjs';

const EXT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = `e2e-${Math.random().toString(36).slice(2)}-token`;
const BROWSER_NAME = 'Test Chromium';
// Alarms fire every 30 s; a wait for one gets that plus generous slack for a loaded machine.
const ALARM_WAIT_MS = 75_000;
const EVENT_WAIT_MS = 15_000;
const ARTIFACTS = process.env.EXTENSION_ARTIFACTS ?? fs.mkdtempSync(path.join(os.tmpdir(), 'netmon-ext-artifacts-'));

let chromium;
let stub;
let received;
let pages;
let pagePort;
let ctx;
let profile;
let extId;
let options;
let tab;
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
        )} and observations ${JSON.stringify(received.observations)}; refusals ${JSON.stringify(received.refusals)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const url = (host, rest = '/') => `http://${host}:${pagePort}${rest}`;
const heartbeatsFor = (host) => received.heartbeats.filter((h) => h.host === host);

before(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: this test needs Debian's chromium (bash tests/install-deps.sh installs it)`);
  }
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is missing (${e.message}): run \`npm ci\` in extension/ (bash tests/install-deps.sh does)`);
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
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'netmon-ext-profile-'));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: ['--disable-extensions'],
    args: [
      `--disable-extensions-except=${EXT}`,
      `--load-extension=${EXT}`,
      // Test host names only, all on loopback; nothing else resolves.
      '--host-resolver-rules=MAP *.test 127.0.0.1, EXCLUDE localhost',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
      '--disable-gpu',
    ],
  });
  let [worker] = ctx.serviceWorkers();
  if (!worker) worker = await ctx.waitForEvent('serviceworker', { timeout: 20_000 });
  extId = new URL(worker.url()).host;
});

after(async () => {
  await ctx?.close();
  await new Promise((r) => (pages ? pages.close(r) : r()));
  await stub?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

test('on install the options page opens; pasting the token connects', async (t) => {
  options = await waitFor('the options page to open by itself', EVENT_WAIT_MS, () =>
    ctx.pages().find((p) => p.url() === `chrome-extension://${extId}/options.html`),
  );
  await options.waitForSelector('#status-text');
  assert.equal(await options.inputValue('#browser'), 'Chromium', 'the guessed name of headless Chromium');
  await options.fill('#server', stub.origin);
  await options.fill('#token', TOKEN);
  await options.fill('#browser', BROWSER_NAME);
  await options.click('#save');
  await options.waitForSelector('.status-ok', { timeout: EVENT_WAIT_MS });
  assert.match(await options.textContent('#status-text'), /Connected to netmon 0\.1\.0-stub at http:\/\/127\.0\.0\.1:\d+/);
  assert.match(await options.textContent('#perm-state'), /^Granted/);
  await options.screenshot({ path: path.join(ARTIFACTS, 'options-connected.png'), fullPage: true });
  t.diagnostic(`screenshot: ${path.join(ARTIFACTS, 'options-connected.png')}`);
});

test("the active tab's host is reported, never its path or query", async () => {
  tab = await ctx.newPage();
  await tab.goto(url('alpha.test', '/secret-path/page.html?q=secret-query#secret-fragment'));
  const hb = await waitFor('a heartbeat for alpha.test', EVENT_WAIT_MS, () => heartbeatsFor('alpha.test')[0]);
  assert.equal(hb.browser, BROWSER_NAME);
  assert.equal(hb.private, false);
  assert.ok(Math.abs(Date.parse(hb.time) - Date.now()) < 60_000, `time ${hb.time} is now`);
});

test('each host is reported with the server address it was served from (127.0.0.1)', async () => {
  const obs = await waitFor('an observation for alpha.test', EVENT_WAIT_MS, () =>
    received.observations.find((o) => o.host === 'alpha.test'),
  );
  assert.equal(obs.ip, '127.0.0.1');
  assert.equal(obs.browser, BROWSER_NAME);
});

test('a URL change in the same tab is a new host, ending the old one', async () => {
  await tab.goto(url('beta.test', '/other?q=secret-query'));
  const beta = await waitFor('a heartbeat for beta.test', EVENT_WAIT_MS, () => heartbeatsFor('beta.test')[0]);
  const alpha = heartbeatsFor('alpha.test');
  const alphaEnd = Math.max(...alpha.map((h) => Date.parse(h.time) + h.duration * 1000));
  assert.ok(alpha.some((h) => h.duration > 0), 'the alpha.test stay got its length when it ended');
  assert.ok(Math.abs(alphaEnd - Date.parse(beta.time)) < 1000, 'alpha.test ends where beta.test starts');
  await waitFor('an observation for beta.test', EVENT_WAIT_MS, () =>
    received.observations.find((o) => o.host === 'beta.test' && o.ip === '127.0.0.1'),
  );
});

test('switching tabs reports the tab switched to', async () => {
  const other = await ctx.newPage();
  await other.goto(url('gamma.test'));
  await waitFor('a heartbeat for gamma.test', EVENT_WAIT_MS, () => heartbeatsFor('gamma.test')[0]);
  const before = heartbeatsFor('beta.test').length;
  await tab.bringToFront();
  await waitFor('beta.test reported again after switching back', EVENT_WAIT_MS, () =>
    heartbeatsFor('beta.test').find((h, i) => i >= before && h.duration === 0),
  );
  await other.close();
});

test('a stay on one tab is reported throughout, by the alarm, without any event', async () => {
  await tab.goto(url('delta.test'));
  const start = await waitFor('a heartbeat for delta.test', EVENT_WAIT_MS, () => heartbeatsFor('delta.test')[0]);
  const longer = await waitFor('delta.test extended by the alarm', ALARM_WAIT_MS, () =>
    heartbeatsFor('delta.test').find((h) => h.time === start.time && h.duration >= 5),
  );
  assert.equal(longer.host, 'delta.test');
});

test('a worker stopped by the browser starts again on the next event and carries on', async () => {
  const cdp = await ctx.newCDPSession(tab);
  const versions = new Map();
  cdp.on('ServiceWorker.workerVersionUpdated', (e) => {
    for (const v of e.versions) if (v.scriptURL.startsWith(`chrome-extension://${extId}/`)) versions.set(v.versionId, v.runningStatus);
  });
  await cdp.send('ServiceWorker.enable');
  const [versionId] = await waitFor('the extension worker to be listed', EVENT_WAIT_MS, () => (versions.size ? [...versions.keys()] : null));
  // Mark the running instance, so a fresh one can be told apart.
  await ctx.serviceWorkers()[0].evaluate(() => {
    self.netmonTestMark = 'old instance';
  });
  await cdp.send('ServiceWorker.stopWorker', { versionId });
  await waitFor('the worker to stop', EVENT_WAIT_MS, () => versions.get(versionId) === 'stopped');
  await tab.goto(url('epsilon.test', '/after-restart'));
  await waitFor('a heartbeat for epsilon.test from the restarted worker', EVENT_WAIT_MS, () => heartbeatsFor('epsilon.test')[0]);
  const mark = await ctx.serviceWorkers()[0].evaluate(() => self.netmonTestMark ?? 'fresh instance');
  assert.equal(mark, 'fresh instance');
  assert.ok(heartbeatsFor('epsilon.test').every((h) => h.browser === BROWSER_NAME), 'the settings survived the restart');
  await cdp.detach();
});

test('with no browser window focused, nothing is active', async () => {
  const cdp = await ctx.newCDPSession(tab);
  const { windowId } = await cdp.send('Browser.getWindowForTarget');
  const before = received.heartbeats.length;
  await cdp.send('Browser.setWindowBounds', { windowId, bounds: { windowState: 'minimized' } });
  await waitFor('a heartbeat with no host', ALARM_WAIT_MS, () => received.heartbeats.slice(before).find((h) => h.host === null));
  await cdp.send('Browser.setWindowBounds', { windowId, bounds: { windowState: 'normal' } });
  await tab.bringToFront();
  await cdp.detach();
});

test('while netmon serve is down reports wait, and are sent once it is back', async (t) => {
  const port = stub.port;
  await stub.close();
  await tab.goto(url('zeta.test', '/while-down'));
  await options.waitForFunction(() => /cannot reach/.test(document.getElementById('last-error').textContent), null, {
    timeout: EVENT_WAIT_MS,
  });
  assert.match(await options.textContent('#queued'), /^[1-9]\d* heartbeats?/);
  const badge = () => options.evaluate(() => chrome.action.getBadgeText({}));
  assert.equal(await badge(), '!', 'the toolbar button says something is wrong');
  await options.click('#check');
  await options.waitForSelector('.status-bad', { timeout: EVENT_WAIT_MS });
  await options.screenshot({ path: path.join(ARTIFACTS, 'options-server-down.png'), fullPage: true });
  t.diagnostic(`screenshot: ${path.join(ARTIFACTS, 'options-server-down.png')}`);
  assert.equal(heartbeatsFor('zeta.test').length, 0);
  stub = await startStub({ token: TOKEN, port, received });
  await waitFor('the queued zeta.test heartbeat, once the server is back', ALARM_WAIT_MS, () => heartbeatsFor('zeta.test')[0]);
  await waitFor('the queued zeta.test observation', EVENT_WAIT_MS, () => received.observations.find((o) => o.host === 'zeta.test'));
  await waitFor('the toolbar badge to clear', EVENT_WAIT_MS, async () => (await badge()) === '');
});

test('every request carried the token and the extension origin, and nothing was refused', () => {
  assert.ok(received.requests.length >= 8, `${received.requests.length} requests`);
  for (const r of received.requests) {
    assert.equal(r.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(r.headers.host, `127.0.0.1:${stub.port}`);
    if (r.headers.origin !== undefined) assert.equal(r.headers.origin, `chrome-extension://${extId}`);
  }
  assert.deepEqual(received.refusals, []);
});

test('no path, query, fragment or page port was ever sent', () => {
  assert.ok(pagesServed.some((p) => p.includes('/secret-path/page.html?q=secret-query')), 'the page with secrets was loaded');
  for (const r of received.requests) {
    assert.doesNotMatch(r.body, /secret|while-down|after-restart|\/other/, `${r.path}: ${r.body}`);
    assert.ok(!r.body.includes(`:${pagePort}`), `${r.path} carries the page port: ${r.body}`);
  }
  const hosts = new Set(received.heartbeats.map((h) => h.host));
  for (const h of hosts) assert.ok(h === null || /^[a-z]+\.test$/.test(h), `unexpected host ${h}`);
});
