// What counts as "the active tab" and whether it may be reported.
//
// A tab is active only when its window has focus: with no browser window focused the user is
// elsewhere, and nothing is active. A tab in a private (incognito) window is reported only when
// the user opted in; otherwise it looks like "nothing active" (host null), which ends the
// previous activity without saying anything about the private one. Pure.

import { hostOf } from './host.js';

/** "Nothing is active in this browser." */
export const NOTHING = Object.freeze({ host: null, private: false });

/**
 * The state to report: `{host, private}` for the active tab `tab` of a window whose focus is
 * `focused`, given the user's `reportPrivate` choice.
 */
export function activeState({ focused, tab }, { reportPrivate }) {
  if (!focused || !tab) return NOTHING;
  const isPrivate = Boolean(tab.incognito);
  if (isPrivate && !reportPrivate) return NOTHING;
  const host = hostOf(tab.url);
  if (host === null) return NOTHING;
  return { host, private: isPrivate };
}

/**
 * Whether a request's observation may be reported. Firefox says whether a request comes from a
 * private window (`details.incognito`); Chromium does not, so the tab is asked (`tabPrivate`,
 * undefined when the request belongs to no tab, such as a service worker's): when the
 * extension may see private windows and the user did not opt in, a request of unknown origin
 * is treated as private.
 */
export function mayReportRequest({ incognito, tabPrivate, extensionSeesPrivate }, { reportPrivate }) {
  if (reportPrivate) return true;
  if (incognito === true || tabPrivate === true) return false;
  if (incognito === false || tabPrivate === false) return true;
  return !extensionSeesPrivate;
}
