import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guessBrowserName } from '../../lib/browser-name.js';

const brands = (...names) => names.map((brand) => ({ brand, version: '130' }));

test('Firefox and its forks name themselves', () => {
  assert.equal(guessBrowserName({ browserInfo: { name: 'Firefox', vendor: 'Mozilla' } }), 'Firefox');
  assert.equal(guessBrowserName({ browserInfo: { name: 'Zen', vendor: 'Zen OSS' }, userAgent: 'Mozilla/5.0 Firefox/140.0' }), 'Zen');
});

test('Chromium-based browsers are told apart by their own brand', () => {
  assert.equal(guessBrowserName({ brands: brands('Not A(Brand', 'Google Chrome', 'Chromium') }), 'Google Chrome');
  assert.equal(guessBrowserName({ brands: brands('Chromium', 'Microsoft Edge', 'Not_A Brand') }), 'Microsoft Edge');
  assert.equal(guessBrowserName({ brands: brands('Brave', 'Chromium', 'Not/A)Brand') }), 'Brave Browser');
  assert.equal(guessBrowserName({ brands: brands('Opera', 'Chromium', 'Not?A_Brand') }), 'Opera');
  assert.equal(guessBrowserName({ brands: brands('Not:A-Brand', 'Chromium') }), 'Chromium');
});

test('Brave is recognised by navigator.brave even when it says Chrome', () => {
  assert.equal(guessBrowserName({ isBrave: true, brands: brands('Google Chrome', 'Chromium') }), 'Brave Browser');
});

test('headless Chromium is Chromium', () => {
  assert.equal(guessBrowserName({ brands: brands('HeadlessChrome', 'Not=A?Brand') }), 'Chromium');
});

test('without brands the user agent is the last resort', () => {
  assert.equal(guessBrowserName({ userAgent: 'Mozilla/5.0 … Chrome/120.0 Safari/537.36 Edg/120.0' }), 'Microsoft Edge');
  assert.equal(guessBrowserName({ userAgent: 'Mozilla/5.0 … Chrome/120.0 Safari/537.36 OPR/105.0' }), 'Opera');
  assert.equal(guessBrowserName({ userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' }), 'Firefox');
  assert.equal(guessBrowserName({ userAgent: 'Mozilla/5.0 … Chrome/120.0 Safari/537.36' }), 'Google Chrome');
  assert.equal(guessBrowserName({}), 'Browser');
});

test('a guess is never longer than the protocol allows', () => {
  assert.equal(guessBrowserName({ browserInfo: { name: 'x'.repeat(100) } }).length, 64);
});
