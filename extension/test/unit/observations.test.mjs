import { test } from 'node:test';
import assert from 'node:assert/strict';
import { observationOf, admit, emptyRecent, RESEND_AFTER_MS, RECENT_LIMIT } from '../../lib/observations.js';

const SERVER = 'http://127.0.0.1:7500';

test('a response gives its host and server address, never its path', () => {
  assert.deepEqual(observationOf({ url: 'https://www.bbc.co.uk/news?x=1', ip: '151.101.0.81' }, SERVER), {
    host: 'www.bbc.co.uk',
    ip: '151.101.0.81',
  });
});

test('responses from cache, without an address, or to netmon itself give nothing', () => {
  assert.equal(observationOf({ url: 'https://a.example/', ip: '192.0.2.1', fromCache: true }, SERVER), null);
  assert.equal(observationOf({ url: 'https://a.example/' }, SERVER), null);
  assert.equal(observationOf({ url: 'http://127.0.0.1:7500/v1/heartbeats', ip: '127.0.0.1' }, SERVER), null);
  assert.equal(observationOf({ url: 'chrome-extension://x/options.html', ip: '127.0.0.1' }, SERVER), null);
  assert.equal(observationOf(undefined, SERVER), null);
});

test('other loopback servers are still observed (they are web pages too)', () => {
  assert.deepEqual(observationOf({ url: 'http://dev.test:3000/', ip: '127.0.0.1' }, SERVER), { host: 'dev.test', ip: '127.0.0.1' });
});

test('a (host, ip) pair is sent at most once per 10 minutes', () => {
  const recent = emptyRecent();
  assert.equal(admit(recent, 'a.example', '192.0.2.1', 0), true);
  assert.equal(admit(recent, 'a.example', '192.0.2.1', RESEND_AFTER_MS - 1), false);
  assert.equal(admit(recent, 'a.example', '192.0.2.2', 1000), true, 'another address of the same host is news');
  assert.equal(admit(recent, 'b.example', '192.0.2.1', 1000), true, 'another host at the same address is news');
  assert.equal(admit(recent, 'a.example', '192.0.2.1', RESEND_AFTER_MS), true, 'after 10 minutes it is sent again');
  assert.equal(admit(recent, 'a.example', '192.0.2.1', RESEND_AFTER_MS + 1), false);
});

test('a clock that went back does not silence a pair for good', () => {
  const recent = emptyRecent();
  admit(recent, 'a.example', '192.0.2.1', 5_000_000);
  assert.equal(admit(recent, 'a.example', '192.0.2.1', 1000), true);
});

test('the memory of sent pairs stays bounded, forgetting stale entries first, then the oldest', () => {
  const recent = emptyRecent();
  for (let i = 0; i < RECENT_LIMIT; i++) admit(recent, `h${i}.example`, '192.0.2.1', 1000 + i);
  assert.equal(recent.size, RECENT_LIMIT);
  assert.equal(Object.keys(recent.pairs).length, recent.size);
  admit(recent, 'one-more.example', '192.0.2.1', 1000 + RECENT_LIMIT);
  const n = recent.size;
  assert.ok(n <= RECENT_LIMIT && n >= RECENT_LIMIT * 0.9, `${n} left`);
  assert.ok(!('h0.example 192.0.2.1' in recent.pairs), 'the oldest went first');
  assert.ok('one-more.example 192.0.2.1' in recent.pairs, 'the newest stays');
  assert.equal(Object.keys(recent.pairs).length, recent.size);
  const late = 2000 + RECENT_LIMIT + RESEND_AFTER_MS;
  // Enough new pairs to go over the limit once more (bounded: at most RECENT_LIMIT of them).
  const before = recent.size;
  for (let i = 0; i <= RECENT_LIMIT - before; i++) admit(recent, `late${i}.example`, '192.0.2.1', late + i);
  assert.ok(!('one-more.example 192.0.2.1' in recent.pairs), 'stale entries are forgotten');
  assert.ok(Object.keys(recent.pairs).every((k) => k.startsWith('late')));
});
