// Issue 6 end to end: the extension in real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core; nothing is downloaded) reports to the real `netmon serve`, the
// real `netmon record` (sockdiag source, loopback counted) measures Chromium's connections, and
// `netmon domains --json` must then show the bytes of each page under the right host.
//
// Run by tests/cli/e2e.rs (`cargo test`), which passes NETMON_BIN; by hand:
//   NETMON_BIN=target/debug/netmon node --test extension/test/e2e/netmon-domains.mjs
//
// Each test host gets its own loopback address (alpha.test → 127.0.0.2, beta.test →
// 127.0.0.3, by --host-resolver-rules), so the address the extension reports for a host
// identifies that host's connections. Every wait polls against a deadline and says what it
// waited for when it gives up. Nothing leaves the machine.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const EXT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const NETMON = process.env.NETMON_BIN;
const BIG = 3_000_000; // bytes of each page's payload
const WAIT_MS = 30_000;
const HOSTS = { 'alpha.test': '127.0.0.2', 'beta.test': '127.0.0.3' };

let chromium;
let dir;
let env;
let serve;
let record;
let token;
let serveOrigin;
let ctx;
let profile;
const ports = {};
const servers = [];
const logs = { serve: '', record: '' };

async function waitFor(what, timeoutMs, cond) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) {
      throw new Error(
        `gave up after ${timeoutMs} ms waiting for ${what}\n--- netmon serve:\n${logs.serve}\n--- netmon record:\n${logs.record}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function netmon(args) {
  return execFileSync(NETMON, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function sql(query) {
  return execFileSync('sqlite3', [path.join(dir, 'netmon.db'), query], { encoding: 'utf8' }).trim();
}

function domains(...args) {
  return JSON.parse(netmon(['domains', '--since', '1h', '--json', ...args]));
}

function start(args, name) {
  const child = spawn(NETMON, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    logs[name] += d;
  });
  return child;
}

async function stop(child, name) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await waitFor(`${name} to stop`, 15_000, () => child.exitCode !== null);
  await exited;
}

before(async () => {
  if (!NETMON) throw new Error('NETMON_BIN is not set: run this through `cargo test` (tests/cli/e2e.rs)');
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: this test needs Debian's chromium (bash tests/install-deps.sh installs it)`);
  }
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is missing (${e.message}): run \`npm ci\` in extension/ (bash tests/install-deps.sh does)`);
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netmon-e2e-'));
  env = { PATH: process.env.PATH, NETMON_DB: path.join(dir, 'netmon.db'), NO_COLOR: '1', TZ: 'UTC' };

  // One page server per test host, each on its own loopback address.
  const payload = Buffer.alloc(BIG, 'x');
  for (const [host, ip] of Object.entries(HOSTS)) {
    const s = http.createServer((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Cache-Control': 'no-store' });
        res.end(payload);
      } else {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(`<!doctype html><title>${host}</title><h1>${host}</h1>`);
      }
    });
    await new Promise((r, j) => s.listen(0, ip, r).once('error', j));
    ports[host] = s.address().port;
    servers.push(s);
  }

  token = netmon(['serve', '--print-token']).trim();
  serve = start(['serve', '--listen', '127.0.0.1:0'], 'serve');
  serveOrigin = await waitFor('netmon serve to listen', WAIT_MS, () => {
    const m = logs.serve.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    return m && m[1];
  });
  record = start(['record', '--source', 'sockdiag', '--include-loopback', '--interval', '250ms', '--write-every', '0'], 'record');
  await waitFor('netmon record to tick', WAIT_MS, () => {
    try {
      return Number(sql('SELECT count(*) FROM ticks')) >= 2;
    } catch {
      return false;
    }
  });

  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'netmon-e2e-profile-'));
  const rules = Object.entries(HOSTS)
    .map(([h, ip]) => `MAP ${h} ${ip}`)
    .join(', ');
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: ['--disable-extensions'],
    args: [
      `--disable-extensions-except=${EXT}`,
      `--load-extension=${EXT}`,
      `--host-resolver-rules=${rules}, EXCLUDE localhost`,
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // sockdiag counts TCP only: keep the pages on TCP.
      '--disable-quic',
    ],
  });
});

after(async () => {
  await ctx?.close();
  await stop(record, 'netmon record');
  await stop(serve, 'netmon serve');
  for (const s of servers) await new Promise((r) => s.close(r));
  for (const d of [profile, dir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

test('the extension connects to netmon serve with the token', async () => {
  let [worker] = ctx.serviceWorkers();
  if (!worker) worker = await ctx.waitForEvent('serviceworker', { timeout: 20_000 });
  const extId = new URL(worker.url()).host;
  const options = await waitFor('the options page', WAIT_MS, () =>
    ctx.pages().find((p) => p.url() === `chrome-extension://${extId}/options.html`),
  );
  await options.waitForSelector('#status-text');
  // The browser name stays the extension's own guess: matching it to netmon's application
  // name ("chromium" on Debian) is part of what is tested.
  await options.fill('#server', serveOrigin);
  await options.fill('#token', token);
  await options.click('#save');
  await options.waitForSelector('.status-ok', { timeout: WAIT_MS });
});

for (const host of Object.keys(HOSTS)) {
  test(`a page on ${host} is counted under ${host}, by its connection`, async () => {
    const tab = await ctx.newPage();
    await tab.goto(`http://${host}:${ports[host]}/`);
    // Once netmon knows which address serves the host, the page's payload comes over a
    // connection to that address.
    await waitFor(`the extension's report that ${HOSTS[host]} serves ${host}`, WAIT_MS, () =>
      sql(`SELECT count(*) FROM web_addresses WHERE host = '${host}' AND ip = '${HOSTS[host]}'`) !== '0',
    );
    const got = await tab.evaluate(async () => (await (await fetch('/big', { cache: 'no-store' })).arrayBuffer()).byteLength);
    assert.equal(got, BIG);
    const row = await waitFor(`${host} with the payload's bytes in netmon domains`, WAIT_MS, () =>
      domains('--no-rollup').find((r) => r.host === host && r.bytes_by_connection >= BIG),
    );
    assert.equal(row.domain, host, 'a .test name is its own registrable domain');
    assert.equal(row.kind, 'site');
    assert.match(row.apps, /chromium/i);
    // The payload plus HTTP headers and the page itself, not another host's payload.
    assert.ok(row.bytes_in < BIG + 200_000, `${host}: ${row.bytes_in} bytes in`);
    await tab.close();
  });
}

test('netmon domains --json lists both hosts with their own bytes, attributed by connection', async (t) => {
  await stop(record, 'netmon record');
  const rows = domains();
  t.diagnostic(netmon(['domains', '--since', '1h', '--bytes']));
  const byDomain = Object.fromEntries(rows.map((r) => [r.domain, r]));
  for (const host of Object.keys(HOSTS)) {
    const r = byDomain[host];
    assert.ok(r, `${host} in ${JSON.stringify(rows)}`);
    assert.ok(r.bytes_in >= BIG && r.bytes_in < BIG + 200_000, `${host}: ${r.bytes_in}`);
    assert.ok(r.connection_share > 0.9, `${host}: ${r.connection_share} by connection`);
    assert.ok(r.coverage > 0, 'coverage is stated');
  }
  // The token never reached a log.
  assert.ok(!logs.serve.includes(token) && !logs.record.includes(token));
});
