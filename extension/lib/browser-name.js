// The browser's name, as netmon should show it and match it against its application names.
//
// Firefox and its forks (Zen, LibreWolf, Floorp, Waterfox) name themselves through
// runtime.getBrowserInfo(). Chromium-based browsers all put "Chromium" and often "Google Chrome"
// in navigator.userAgentData.brands; Edge, Opera and others add their own brand, Brave adds
// navigator.brave, and some (Vivaldi, Arc) pass as Chrome. This is a guess for the options page
// to prefill; the user can correct it. Pure.

// Brands that say nothing about which browser this is ("Not A(Brand" and friends are GREASE).
const GENERIC = /^(chromium|google chrome|headlesschrome|not.*brand.*)$/i;

// Brand → the name of the browser's application (macOS bundle name where there is one).
const KNOWN_BRANDS = new Map([
  ['microsoft edge', 'Microsoft Edge'],
  ['brave', 'Brave Browser'],
  ['opera', 'Opera'],
  ['opera gx', 'Opera GX'],
  ['yandex', 'Yandex'],
  ['vivaldi', 'Vivaldi'],
]);

/**
 * Guesses the browser's name from what the browser says about itself:
 * `browserInfo` (Firefox's runtime.getBrowserInfo() result), `brands`
 * (navigator.userAgentData.brands), `isBrave` (navigator.brave exists) and `userAgent`.
 */
export function guessBrowserName({ browserInfo, brands, isBrave, userAgent } = {}) {
  if (browserInfo && typeof browserInfo.name === 'string' && browserInfo.name.trim() !== '') {
    return browserInfo.name.trim().slice(0, 64);
  }
  if (isBrave) return 'Brave Browser';
  const names = Array.isArray(brands) ? brands.map((b) => String(b?.brand ?? '').trim()).filter(Boolean) : [];
  const specific = names.find((n) => !GENERIC.test(n));
  if (specific) return KNOWN_BRANDS.get(specific.toLowerCase()) ?? specific.slice(0, 64);
  if (names.some((n) => /^google chrome$/i.test(n))) return 'Google Chrome';
  if (names.some((n) => /^(chromium|headlesschrome)$/i.test(n))) return 'Chromium';
  const ua = typeof userAgent === 'string' ? userAgent : '';
  if (/\bEdg\//.test(ua)) return 'Microsoft Edge';
  if (/\bOPR\//.test(ua)) return 'Opera';
  if (/\bVivaldi\//.test(ua)) return 'Vivaldi';
  if (/\bFirefox\//.test(ua)) return 'Firefox';
  if (/\bChrome\//.test(ua)) return 'Google Chrome';
  return 'Browser';
}
