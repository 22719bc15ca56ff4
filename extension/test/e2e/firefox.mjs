// Debian's firefox-esr, headless, driven over WebDriver BiDi (built into Firefox; the `ws`
// package is the socket). BiDi's webExtension.install loads the extension as a temporary
// add-on, as about:debugging does. Playwright cannot drive a stock Firefox, hence this.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';

/**
 * Starts Firefox with a fresh profile holding `prefs`, and a BiDi session. Returns
 * `{send(method, params), evaluate(context, expression), close()}`.
 */
export async function launchFirefox({ executable, prefs, startupTimeoutMs = 60_000 }) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'netmon-ext-firefox-'));
  fs.writeFileSync(
    path.join(profile, 'user.js'),
    Object.entries(prefs)
      .map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`)
      .join('\n'),
  );
  const child = spawn(executable, ['--headless', '--no-remote', '--remote-debugging-port=0', '--profile', profile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Firefox did not start WebDriver BiDi within ${startupTimeoutMs} ms:\n${stderr}`)), startupTimeoutMs);
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /WebDriver BiDi listening on (ws:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Firefox exited (${code}) before WebDriver BiDi started:\n${stderr}`));
    });
  });
  const ws = new WebSocket(`${url}/session`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let nextId = 0;
  const waiting = new Map();
  ws.on('message', (raw) => {
    const msg = JSON.parse(raw);
    const done = msg.id !== undefined && waiting.get(msg.id);
    if (!done) return;
    waiting.delete(msg.id);
    if (msg.type === 'error') done.reject(new Error(`${msg.error}: ${msg.message}`));
    else done.resolve(msg.result);
  });
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      waiting.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send('session.new', { capabilities: {} });

  return {
    send,
    /** Runs `expression` (may be a promise) in a browsing context and returns its value. */
    async evaluate(context, expression) {
      const r = await send('script.evaluate', { expression, target: { context }, awaitPromise: true });
      if (r.type === 'exception') throw new Error(`script failed: ${JSON.stringify(r.exceptionDetails?.text ?? r)}`);
      return r.result?.value;
    },
    async close() {
      await send('session.end').catch(() => {});
      ws.close();
      child.kill('SIGTERM');
      await new Promise((r) => {
        if (child.exitCode !== null) return r();
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          r();
        }, 10_000);
        child.once('exit', () => {
          clearTimeout(t);
          r();
        });
      });
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
