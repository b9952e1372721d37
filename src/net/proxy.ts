// Which proxy a request takes, by curl's rules, so tagtrail behaves as curl does on the same
// machine. Pure: the environment comes in as a record.
//
//   http://  URLs: http_proxy (lower case only: curl ignores HTTP_PROXY, which a CGI request's
//            "Proxy:" header can set), else all_proxy, else ALL_PROXY.
//   https:// URLs: https_proxy, else HTTPS_PROXY, else all_proxy, else ALL_PROXY.
//   no_proxy, else NO_PROXY: hosts that bypass the proxy. Loopback is not exempt unless listed.
//   A proxy without a port is reached on 1080 (443 for an https:// proxy).
import { UsageError } from '../errors.js';

export interface ProxySettings {
  /** The proxy for http:// URLs, or undefined for none. */
  readonly http?: string;
  /** The proxy for https:// URLs, or undefined for none. */
  readonly https?: string;
  /** The NO_PROXY list, as written. */
  readonly noProxy: string;
}

type Env = Readonly<Record<string, string | undefined>>;

function first(env: Env, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}

/** curl's port for a proxy given without one: 443 for an https:// proxy, 1080 for any other. */
const DEFAULT_HTTP_PROXY_PORT = '1080';

/**
 * True when the text names a port after the host. URL drops a port equal to the scheme's default
 * (`http://proxy:80` has port ''), so the text itself tells an explicit :80 from no port at all.
 */
function hasExplicitPort(withScheme: string): boolean {
  const authority = withScheme.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split(/[/?#]/, 1)[0] ?? '';
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  return /^(\[[^\]]*\]|[^:]*):\d+$/.test(hostPort);
}

function decodes(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * A proxy URL as curl takes it: scheme optional (http assumed), http or https only, port 1080
 * when none is given (443 for https). Errors name the variable, never its value: it may hold a
 * password.
 */
function proxyUrl(found: { name: string; value: string } | undefined): string | undefined {
  if (!found) return undefined;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(found.value) ? found.value : `http://${found.value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`${found.name} is not a proxy URL`, { hint: 'write it as http://proxy.example.com:3128' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${found.name}: a ${url.protocol.slice(0, -1)} proxy is not supported`, { hint: 'tagtrail speaks to http:// and https:// proxies (CONNECT for https URLs)' });
  }
  if (!decodes(url.username) || !decodes(url.password)) {
    throw new UsageError(`${found.name}: the user name or password is not valid percent-encoding`, {
      hint: 'in a proxy URL, write % as %25, @ as %40 and : as %3A in the user name and password (http://user:p%40ss@proxy.example.com:3128)',
    });
  }
  if (url.protocol === 'http:' && !hasExplicitPort(withScheme)) url.port = DEFAULT_HTTP_PROXY_PORT;
  return url.toString();
}

export function proxySettingsFromEnv(env: Env): ProxySettings {
  const all = ['all_proxy', 'ALL_PROXY'];
  const http = proxyUrl(first(env, ['http_proxy', ...all]));
  const https = proxyUrl(first(env, ['https_proxy', 'HTTPS_PROXY', ...all]));
  const noProxy = env.no_proxy ?? env.NO_PROXY ?? '';
  return { ...(http ? { http } : {}), ...(https ? { https } : {}), noProxy };
}

/** IPv4 dotted quad to a 32-bit number, or undefined. */
function ipv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

/** IPv6 text to a 128-bit bigint, or undefined (no embedded IPv4 form). */
function ipv6(s: string): bigint | undefined {
  if (!s.includes(':') || !/^[0-9a-f:]+$/i.test(s)) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? (halves[0] as string).split(':') : [];
  const tail = halves.length === 2 && halves[1] ? (halves[1] as string).split(':') : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g, 16)), 0n);
}

function inCidr(host: string, entry: string): boolean {
  const [net, bitsText] = entry.split('/') as [string, string | undefined];
  const a4 = ipv4(host);
  const n4 = ipv4(net);
  if (a4 !== undefined && n4 !== undefined) {
    const bits = bitsText === undefined ? 32 : Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > 32) return false;
    const shift = 32 - bits;
    return Math.floor(a4 / 2 ** shift) === Math.floor(n4 / 2 ** shift);
  }
  const a6 = ipv6(host);
  const n6 = ipv6(net);
  if (a6 !== undefined && n6 !== undefined) {
    const bits = bitsText === undefined ? 128 : Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > 128) return false;
    const shift = BigInt(128 - bits);
    return a6 >> shift === n6 >> shift;
  }
  return false;
}

/**
 * True when NO_PROXY says `hostname` (no port; IPv6 without brackets) goes direct. As curl: entries
 * separated by commas or white space; `*` alone matches everything; a name matches itself and
 * every name under it, with or without a leading dot; an IP address or CIDR range matches the
 * addresses in it. Ports in entries are not supported by curl, and not here either.
 */
export function bypassesProxy(hostname: string, noProxy: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  const entries = noProxy.split(/[\s,]+/).map((e) => e.trim().toLowerCase()).filter((e) => e !== '');
  if (entries.length === 1 && entries[0] === '*') return true;
  const isIp = ipv4(host) !== undefined || ipv6(host) !== undefined;
  for (const raw of entries) {
    const entry = raw.replace(/^\[|\]$/g, '');
    if (isIp) {
      if (inCidr(host, entry)) return true;
      continue;
    }
    const name = entry.replace(/^\*?\./, '').replace(/\.$/, '');
    if (name === '') continue;
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}
