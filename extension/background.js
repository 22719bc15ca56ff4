// The background worker: wires the browser's events to the tracker (lib/tracker.js).
//
// Chromium runs this file as a Manifest V3 service worker, Firefox as a non-persistent
// background script; both stop it when idle and start it again for the next event. So every
// listener is registered synchronously at the top level (an event that restarts the worker
// must find its listener), all state is in storage (the tracker), and an alarm about every
// 30 s wakes the worker to re-read the active tab, extend the current heartbeat and send.

import { createTracker } from './lib/tracker.js';
import { activeState, mayReportRequest } from './lib/privacy.js';
import { observationOf } from './lib/observations.js';
import { guessBrowserName } from './lib/browser-name.js';
import { serverOrigin } from './lib/host.js';

const api = globalThis.browser ?? globalThis.chrome;

const ALARM = 'netmon-heartbeat';
// Chromium's minimum period for a packed extension (Chrome 120+); Firefox accepts it too.
const ALARM_PERIOD_MINUTES = 0.5;

function log(...args) {
  console.warn('netmon:', ...args);
}

let guessed = 'Browser';
const guessing = (async () => {
  let browserInfo;
  try {
    browserInfo = await api.runtime.getBrowserInfo?.();
  } catch {
    // Chromium has no getBrowserInfo.
  }
  guessed = guessBrowserName({
    browserInfo,
    brands: globalThis.navigator?.userAgentData?.brands,
    isBrave: Boolean(globalThis.navigator?.brave),
    userAgent: globalThis.navigator?.userAgent,
  });
})();

const tracker = createTracker({
  store: api.storage.local,
  fetchImpl: (...args) => fetch(...args),
  guessBrowser: () => guessed,
  log,
});

let settings = null;
async function currentSettings() {
  if (!settings) settings = (await tracker.snapshot()).settings;
  return settings;
}

async function ensureAlarm() {
  const existing = await api.alarms.get(ALARM);
  if (!existing) await api.alarms.create(ALARM, { periodInMinutes: ALARM_PERIOD_MINUTES, delayInMinutes: ALARM_PERIOD_MINUTES });
}

// What is active right now. A tab is active only in a focused window: with no browser window
// focused (another program in front, or all windows closed) nothing is.
async function readActive() {
  let win;
  try {
    win = await api.windows.getLastFocused({ windowTypes: ['normal', 'popup'] });
  } catch {
    return { focused: false };
  }
  if (!win || !win.focused) return { focused: false };
  const [tab] = await api.tabs.query({ active: true, windowId: win.id });
  return { focused: true, tab };
}

// Updates run one after another, each reading the browser's state when its turn comes, so
// two events in quick succession cannot record their observations out of order.
let updates = Promise.resolve();
function update(send = 'soon') {
  updates = updates
    .then(async () => {
      await guessing;
      const s = await currentSettings();
      const seen = activeState(await readActive(), s);
      await tracker.observeActive(seen, Date.now(), send);
    })
    .catch((e) => log('update failed', e));
  return updates;
}

api.tabs.onActivated.addListener(() => update());
api.tabs.onUpdated.addListener((_tabId, change, tab) => {
  // A new URL in the active tab may be a new host (the tracker compares hosts).
  if (tab?.active && change.url !== undefined) update();
});
api.tabs.onRemoved.addListener((tabId) => {
  tabPrivacy.delete(tabId);
  update();
});
api.windows.onFocusChanged.addListener(() => update());
api.windows.onRemoved.addListener(() => update());

api.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === ALARM) update('now');
});

api.runtime.onInstalled.addListener(async (details) => {
  await ensureAlarm();
  if (details.reason === 'install') {
    await guessing;
    const s = await currentSettings();
    if (!s.browser) await api.storage.local.set({ settings: { ...s, browser: guessed } });
    // The user has to paste the token before anything can be sent.
    api.runtime.openOptionsPage().catch((e) => log('cannot open the options page', e));
  }
  update();
});
api.runtime.onStartup.addListener(async () => {
  await ensureAlarm();
  update();
});

// The toolbar button opens the options page; its badge shows "!" while reports cannot be
// delivered (the options page says why).
api.action?.onClicked.addListener(() => {
  api.runtime.openOptionsPage().catch((e) => log('cannot open the options page', e));
});
function showDelivery(delivery) {
  const failing = Boolean(delivery?.lastError);
  api.action?.setBadgeBackgroundColor?.({ color: '#c5221f' })?.catch?.(() => {});
  api.action?.setBadgeText({ text: failing ? '!' : '' }).catch(() => {});
  api.action?.setTitle({ title: failing ? `netmon: ${delivery.lastError.message}` : 'netmon: options and connection status' }).catch(() => {});
}

api.storage.onChanged.addListener((changes, area) => {
  if (area === 'local' && changes.delivery) showDelivery(changes.delivery.newValue);
  if (area !== 'local' || !changes.settings) return;
  settings = { ...changes.settings.newValue };
  tracker.settingsChanged(changes.settings.newValue).catch((e) => log('send after settings change failed', e));
  // The browser name or the private-window choice may change what is reported.
  update();
});

// Chromium's webRequest details do not say whether a request is private; the tab does.
const tabPrivacy = new Map();
async function tabIsPrivate(tabId) {
  if (typeof tabId !== 'number' || tabId < 0) return undefined;
  if (!tabPrivacy.has(tabId)) {
    try {
      tabPrivacy.set(tabId, Boolean((await api.tabs.get(tabId)).incognito));
    } catch {
      return undefined;
    }
  }
  return tabPrivacy.get(tabId);
}

let seesPrivate = null;
async function extensionSeesPrivate() {
  if (seesPrivate === null) {
    try {
      seesPrivate = Boolean(await api.extension.isAllowedIncognitoAccess());
    } catch {
      seesPrivate = true;
    }
  }
  return seesPrivate;
}

async function onResponse(details) {
  try {
    await guessing;
    const s = await currentSettings();
    let origin = null;
    try {
      origin = serverOrigin(s.server);
    } catch {
      // An unusable address: nothing is sent anyway.
    }
    const obs = observationOf(details, origin);
    if (!obs) return;
    const info = {
      incognito: typeof details.incognito === 'boolean' ? details.incognito : undefined,
      tabPrivate: typeof details.incognito === 'boolean' ? undefined : await tabIsPrivate(details.tabId),
      extensionSeesPrivate: await extensionSeesPrivate(),
    };
    if (!mayReportRequest(info, s)) return;
    await tracker.observeRequest(obs, Date.now());
  } catch (e) {
    log('observation failed', e);
  }
}
// Where the browser lets an extension watch requests (a host permission for the site), each
// response says which server address it came from; nothing is blocked or changed.
api.webRequest?.onResponseStarted.addListener(onResponse, { urls: ['<all_urls>'] });

// The worker (re)started: make sure the alarm exists and record where we are.
ensureAlarm().catch((e) => log('cannot create the alarm', e));
update('no');
