import { test } from 'node:test';
import assert from 'node:assert/strict';
import { activeState, mayReportRequest, NOTHING } from '../../lib/privacy.js';

const tab = (url, incognito = false) => ({ url, incognito });

test('the active tab of a focused window is reported by its host', () => {
  assert.deepEqual(activeState({ focused: true, tab: tab('https://www.bbc.co.uk/news') }, { reportPrivate: false }), {
    host: 'www.bbc.co.uk',
    private: false,
  });
});

test('with no browser window focused nothing is active', () => {
  assert.deepEqual(activeState({ focused: false, tab: tab('https://a.example/') }, { reportPrivate: true }), NOTHING);
  assert.deepEqual(activeState({ focused: true, tab: undefined }, { reportPrivate: true }), NOTHING);
});

test('a private window is not reported unless the user opted in', () => {
  const s = { focused: true, tab: tab('https://secret.example/', true) };
  assert.deepEqual(activeState(s, { reportPrivate: false }), NOTHING);
  assert.deepEqual(activeState(s, { reportPrivate: true }), { host: 'secret.example', private: true });
});

test('a page that is not on the web counts as nothing active', () => {
  assert.deepEqual(activeState({ focused: true, tab: tab('about:newtab') }, { reportPrivate: false }), NOTHING);
});

test('requests from private windows are not reported unless the user opted in', () => {
  const no = { reportPrivate: false };
  assert.equal(mayReportRequest({ incognito: true }, no), false, 'Firefox says so');
  assert.equal(mayReportRequest({ incognito: false, extensionSeesPrivate: true }, no), true);
  assert.equal(mayReportRequest({ tabPrivate: true, extensionSeesPrivate: true }, no), false, 'Chromium: the tab says so');
  assert.equal(mayReportRequest({ tabPrivate: false, extensionSeesPrivate: true }, no), true);
  assert.equal(mayReportRequest({ incognito: true }, { reportPrivate: true }), true);
});

test('a request of no tab counts as private when the extension can see private windows', () => {
  const no = { reportPrivate: false };
  assert.equal(mayReportRequest({ extensionSeesPrivate: true }, no), false);
  assert.equal(mayReportRequest({ extensionSeesPrivate: false }, no), true);
});
