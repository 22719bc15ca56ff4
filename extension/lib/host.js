// Host names and addresses: what may leave the browser, and where it may go.
//
// Only the host of a page is ever reported, never its path, query or fragment, so every URL
// goes through hostOf() before anything else sees it.

const WEB_SCHEMES = new Set(['http:', 'https:']);
// webRequest also sees WebSocket handshakes; their server addresses are browser traffic too.
const REQUEST_SCHEMES = new Set(['http:', 'https:', 'ws:', 'wss:']);

// A DNS name (letters, digits, hyphens, underscores seen in the wild, dots) or an IPv4
// literal, or an IPv6 literal in brackets as URL.hostname gives it.
const HOST_RE = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
const IPV6_LITERAL_RE = /^\[[0-9a-f:.]+\]$/;

/**
 * The lower-case host of a web page URL, or null when the URL is not a web page (about:,
 * chrome://, file:, extension pages, the new tab page, view-source:, data:, …) or not a URL.
 * The scheme, port, user info, path, query and fragment are never part of the result.
 */
export function hostOf(url, { requests = false } = {}) {
  if (typeof url !== 'string' || url === '') return null;
  let u;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (!(requests ? REQUEST_SCHEMES : WEB_SCHEMES).has(u.protocol)) return null;
  // URL already lower-cases and punycodes the host; a fully qualified name's trailing dot
  // names the same site.
  let host = u.hostname.replace(/\.$/, '');
  if (host === '' || host.length > 253) return null;
  if (IPV6_LITERAL_RE.test(host)) return host;
  return HOST_RE.test(host) ? host : null;
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * The server address as the protocol wants it (no port, no brackets, no zone), or null when
 * the browser gave none or something that is not an IP address. An IPv4-mapped IPv6 address
 * becomes the IPv4 address, which is how netmon sees that connection's remote end.
 */
export function normalizeIp(ip) {
  if (typeof ip !== 'string') return null;
  let s = ip.trim().toLowerCase();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (IPV4_RE.test(s)) return s;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (mapped && IPV4_RE.test(mapped[1])) return mapped[1];
  if (!s.includes(':') || !/^[0-9a-f:.]+$/.test(s) || s.length > 45) return null;
  // Let the URL parser decide whether it is a valid IPv6 address.
  try {
    const h = new URL(`http://[${s}]/`).hostname;
    return h.slice(1, -1);
  } catch {
    return null;
  }
}

export const DEFAULT_PORT = '7500';
export const DEFAULT_SERVER = `http://127.0.0.1:${DEFAULT_PORT}`;

// The Host names netmon serve accepts (PROTOCOL.md: it refuses others to defeat DNS rebinding).
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Checks the server address typed on the options page and returns its origin
 * (`http://127.0.0.1:7500`). `netmon serve` only answers to a loopback Host, and nothing the
 * extension sends may leave the machine, so anything but a loopback http address is refused
 * with a message saying what to type instead.
 */
export function serverOrigin(address) {
  let text = String(address ?? '').trim();
  if (text === '') return DEFAULT_SERVER;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `http://${text}`;
  let u;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`"${address}" is not an address: type one like ${DEFAULT_SERVER}`);
  }
  if (u.protocol !== 'http:') {
    throw new Error(`netmon serve speaks plain http on loopback: use http://, as in ${DEFAULT_SERVER}`);
  }
  const h = u.hostname;
  if (!LOOPBACK_HOSTS.has(h)) {
    throw new Error(
      `${h} is not an address netmon serve answers on: use 127.0.0.1, [::1] or localhost, as in ${DEFAULT_SERVER}`,
    );
  }
  if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
    throw new Error(`give only the scheme, host and port, as in ${DEFAULT_SERVER}`);
  }
  // "localhost" alone means netmon's port, not port 80.
  if (u.port === '' && !/^http:\/\/(\[[^\]]*\]|[^/:]*):\d+/i.test(text)) u.port = DEFAULT_PORT;
  return u.origin;
}
