// A stand-in for `netmon serve` that follows PROTOCOL.md strictly and records what it got.
//
// The browser test checks the extension against it: every request must carry the token, a
// loopback Host and an extension Origin (or none), and bodies must validate field by field
// (unknown fields too are refused, so the extension cannot leak anything the protocol does
// not name). Refusals are recorded as well as answered, so a test can assert there were none.

import http from 'node:http';

const MAX_BODY = 64 * 1024;
const HOST_OK = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/;
const ORIGIN_OK = /^(chrome-extension|moz-extension|safari-web-extension):\/\/[^/]+$/;
const HOSTNAME = /^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$|^\[[0-9a-f:.]+\]$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

class Refusal extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const bad = (message) => new Refusal(400, 'bad_request', message);

function checkKeys(obj, allowed, where) {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw bad(`${where}.${k}: not a field of the protocol`);
}

function checkTime(v, where) {
  if (typeof v !== 'string' || !RFC3339_UTC.test(v) || Number.isNaN(Date.parse(v))) throw bad(`${where}: not an RFC 3339 UTC time`);
}

function checkBrowser(v, where) {
  if (typeof v !== 'string' || v.length < 1 || v.length > 64) throw bad(`${where}: a string of 1 to 64 characters`);
}

function checkHost(v, where) {
  if (typeof v !== 'string' || v.length > 253 || !HOSTNAME.test(v)) throw bad(`${where}: a lower-case host name`);
}

function checkIp(v, where) {
  const m = typeof v === 'string' ? IPV4.exec(v) : null;
  if (m && m.slice(1).every((o) => Number(o) <= 255)) return;
  if (typeof v === 'string' && v.includes(':') && /^[0-9a-f:.]+$/.test(v)) return;
  throw bad(`${where}: an IPv4 or IPv6 address without brackets`);
}

export function validateHeartbeats(body) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('body: an object');
  checkKeys(body, ['heartbeats'], 'body');
  const list = body.heartbeats;
  if (!Array.isArray(list) || list.length < 1 || list.length > 100) throw bad('heartbeats: an array of 1 to 100');
  list.forEach((hb, i) => {
    const w = `heartbeats[${i}]`;
    if (typeof hb !== 'object' || hb === null) throw bad(`${w}: an object`);
    checkKeys(hb, ['browser', 'host', 'time', 'duration', 'private'], w);
    checkBrowser(hb.browser, `${w}.browser`);
    if (hb.host !== null) checkHost(hb.host, `${w}.host`);
    checkTime(hb.time, `${w}.time`);
    if (hb.duration !== undefined && (typeof hb.duration !== 'number' || !(hb.duration >= 0))) throw bad(`${w}.duration: a number ≥ 0`);
    if (hb.private !== undefined && typeof hb.private !== 'boolean') throw bad(`${w}.private: a boolean`);
  });
  return list;
}

export function validateObservations(body) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('body: an object');
  checkKeys(body, ['observations'], 'body');
  const list = body.observations;
  if (!Array.isArray(list) || list.length < 1 || list.length > 500) throw bad('observations: an array of 1 to 500');
  list.forEach((o, i) => {
    const w = `observations[${i}]`;
    if (typeof o !== 'object' || o === null) throw bad(`${w}: an object`);
    checkKeys(o, ['browser', 'host', 'ip', 'time'], w);
    checkBrowser(o.browser, `${w}.browser`);
    checkHost(o.host, `${w}.host`);
    checkIp(o.ip, `${w}.ip`);
    checkTime(o.time, `${w}.time`);
  });
  return list;
}

/**
 * Starts the stand-in on 127.0.0.1 (`port` 0 picks one). Returns `{port, origin, received,
 * close()}`; `received` holds `heartbeats`, `observations`, `requests` (method, path, headers,
 * raw body) and `refusals`.
 */
export function startStub({ token, port = 0, received } = {}) {
  const got = received ?? { heartbeats: [], observations: [], requests: [], refusals: [] };
  const server = http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      got.requests.push({ method: req.method, path: req.url, headers: { ...req.headers }, body: raw });
      const reply = (status, obj) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      try {
        if (!HOST_OK.test(req.headers.host ?? '')) throw new Refusal(403, 'forbidden_host', 'Host must be a loopback name');
        const origin = req.headers.origin;
        if (origin !== undefined && !ORIGIN_OK.test(origin)) throw new Refusal(403, 'forbidden_origin', 'Origin must be a browser extension');
        if (req.headers.authorization !== `Bearer ${token}`) throw new Refusal(401, 'unauthorized', 'missing or wrong token');
        if (size > MAX_BODY) throw new Refusal(413, 'payload_too_large', 'at most 64 KiB');
        const route = `${req.method} ${req.url}`;
        if (route === 'GET /v1/status') {
          return reply(200, { ok: true, version: '0.1.0-stub', protocol: 1, recorder: { running: true, source: 'nettop' } });
        }
        if (!['/v1/heartbeats', '/v1/observations'].includes(req.url)) throw new Refusal(404, 'not_found', req.url);
        if (req.method !== 'POST') throw new Refusal(405, 'method_not_allowed', req.method);
        if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) throw bad('Content-Type: application/json');
        let body;
        try {
          body = JSON.parse(raw);
        } catch {
          throw bad('body: malformed JSON');
        }
        const list = req.url === '/v1/heartbeats' ? validateHeartbeats(body) : validateObservations(body);
        (req.url === '/v1/heartbeats' ? got.heartbeats : got.observations).push(...list);
        return reply(200, { accepted: list.length });
      } catch (e) {
        if (!(e instanceof Refusal)) throw e;
        got.refusals.push({ status: e.status, code: e.code, message: e.message, path: req.url });
        return reply(e.status, { error: e.code, message: e.message });
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const actual = server.address().port;
      resolve({
        port: actual,
        origin: `http://127.0.0.1:${actual}`,
        received: got,
        close: () =>
          new Promise((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
