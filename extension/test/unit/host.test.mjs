import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostOf, normalizeIp, serverOrigin, DEFAULT_SERVER } from '../../lib/host.js';

test('only the host of a web page is kept: no scheme, port, user, path, query or fragment', () => {
  assert.equal(hostOf('https://user:pw@WWW.BBC.co.uk:8443/news/uk?id=42&q=secret#top'), 'www.bbc.co.uk');
  assert.equal(hostOf('http://example.org'), 'example.org');
});

test('a fully qualified name with its trailing dot is the same host', () => {
  assert.equal(hostOf('https://github.com./x'), 'github.com');
});

test('IPv6 literals keep their brackets, as the protocol asks', () => {
  assert.equal(hostOf('http://[2001:DB8::1]:8080/path'), '[2001:db8::1]');
});

test('international names become their punycode form', () => {
  assert.equal(hostOf('https://bücher.example/'), 'xn--bcher-kva.example');
});

test('pages that are not on the web have no host', () => {
  for (const url of [
    'about:blank', 'about:newtab', 'chrome://newtab/', 'chrome://extensions', 'edge://settings',
    'moz-extension://abc/options.html', 'chrome-extension://abc/options.html', 'file:///home/me/a.html',
    'view-source:https://example.org/', 'data:text/html,hi', 'javascript:void(0)', 'blob:https://a.example/1',
    'ws://example.org/socket', '', 'not a url', undefined, null, 42,
  ]) {
    assert.equal(hostOf(url), null, String(url));
  }
});

test('requests may also be WebSocket handshakes', () => {
  assert.equal(hostOf('wss://chat.example.org/socket?token=x', { requests: true }), 'chat.example.org');
  assert.equal(hostOf('ftp://example.org/', { requests: true }), null);
});

test('server addresses lose brackets and zones, and mapped IPv4 becomes IPv4', () => {
  assert.equal(normalizeIp('151.101.0.81'), '151.101.0.81');
  assert.equal(normalizeIp('[2001:db8::1]'), '2001:db8::1');
  assert.equal(normalizeIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(normalizeIp('fe80::1%eth0'), 'fe80::1');
  assert.equal(normalizeIp('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(normalizeIp('::1'), '::1');
});

test('anything that is not an IP address is not a server address', () => {
  for (const ip of [undefined, null, '', 'example.org', '256.1.1.1', '1.2.3', '1.2.3.4:80', '::g', 'fe80::1::2']) {
    assert.equal(normalizeIp(ip), null, String(ip));
  }
});

test('the server address defaults to netmon serve on 127.0.0.1:7500', () => {
  assert.equal(serverOrigin(''), DEFAULT_SERVER);
  assert.equal(serverOrigin(undefined), DEFAULT_SERVER);
  assert.equal(DEFAULT_SERVER, 'http://127.0.0.1:7500');
});

test('loopback addresses are accepted with or without scheme and port', () => {
  assert.equal(serverOrigin('127.0.0.1'), 'http://127.0.0.1:7500');
  assert.equal(serverOrigin('localhost:9000'), 'http://localhost:9000');
  assert.equal(serverOrigin('http://[::1]:7501/'), 'http://[::1]:7501');
  assert.equal(serverOrigin(' http://127.0.0.1:80 '), 'http://127.0.0.1');
});

test('an address off this machine is refused with what to type instead', () => {
  for (const [addr, words] of [
    ['http://example.org:7500', /not an address netmon serve answers on/],
    ['http://192.168.1.10:7500', /not an address netmon serve answers on/],
    ['http://127.0.0.2:7500', /not an address netmon serve answers on/],
    ['https://127.0.0.1:7500', /plain http/],
    ['http://127.0.0.1:7500/v1', /only the scheme, host and port/],
    ['http://me@127.0.0.1:7500', /only the scheme, host and port/],
    ['http://', /is not an address/],
  ]) {
    assert.throws(() => serverOrigin(addr), words, addr);
  }
});
