// Talking to `netmon serve` (PROTOCOL.md): one request at a time, bounded in time, with
// errors turned into sentences for the options page.

export const TIMEOUT_MS = 5000;

/**
 * Sends one request and returns `{status, json}`, or `{status: 0, error}` when there was no
 * HTTP answer (server not running, timeout). Never throws.
 */
export async function call({ origin, token, method = 'POST', path, body, fetchImpl = globalThis.fetch, timeoutMs = TIMEOUT_MS }) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetchImpl(`${origin}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal,
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
    let json = null;
    try {
      json = await res.json();
    } catch {
      // Not JSON: described by its status below.
    }
    return { status: res.status, json };
  } catch (e) {
    const error =
      e?.name === 'AbortError'
        ? `no answer from ${origin} within ${timeoutMs / 1000} s`
        : `cannot reach ${origin}: is "netmon serve" running?`;
    return { status: 0, json: null, error };
  } finally {
    clearTimeout(timer);
  }
}

/** A sentence for a failed result: what happened and what to do. */
export function describe(result) {
  if (result.status === 0) return result.error;
  const code = result.json?.error;
  const msg = typeof result.json?.message === 'string' ? result.json.message : '';
  if (result.status === 401) {
    return 'netmon serve refused the access token: paste the output of "netmon serve --print-token" into the options page';
  }
  if (code === 'forbidden_origin' || code === 'forbidden_host') {
    return `netmon serve refused this request (${code}): ${msg || 'check the server address'}`;
  }
  if (result.status === 404) {
    return 'netmon serve does not know this request: update netmon or the extension so both speak protocol v1';
  }
  return `netmon serve answered ${result.status}${code ? ` (${code})` : ''}${msg ? `: ${msg}` : ''}`;
}
