// The secrets a catalog database URL can hold (a password, and libpq's password, sslpassword and
// sslkey query parameters), hidden for messages and logs. One owner for open.ts and the drivers.

/** Query parameters of a database URL that carry a secret (the driver reads them as libpq does). */
const SECRET_PARAMS = new Set(['password', 'sslpassword', 'sslkey']);

function decoded(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** The query parameters of `url` as written: [name as written, value as written]. */
function queryParams(url: string): [string, string][] {
  const q = url.indexOf('?');
  if (q < 0) return [];
  return url
    .slice(q + 1)
    .split('#', 1)[0]!
    .split('&')
    .map((part): [string, string] => {
      const eq = part.indexOf('=');
      return eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
    });
}

function isSecretParam(name: string): boolean {
  return SECRET_PARAMS.has(decoded(name).toLowerCase());
}

/** Hides the secrets of a database URL: scheme://user:***@host?password=***. For messages and logs. */
export function redactDatabaseUrl(url: string): string {
  // The user information ends at the authority's LAST '@' (pg reads postgres://u:p@ss@host so),
  // and the password is everything after its first ':'.
  const out = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i, (whole, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon < 0 ? whole : `${scheme}${userinfo.slice(0, colon)}:***@`;
  });
  const q = out.indexOf('?');
  if (q < 0) return out;
  const [query, ...fragment] = out.slice(q + 1).split('#');
  const shown = (query ?? '')
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=');
      return eq >= 0 && isSecretParam(part.slice(0, eq)) ? `${part.slice(0, eq)}=***` : part;
    })
    .join('&');
  return `${out.slice(0, q + 1)}${shown}${fragment.length > 0 ? `#${fragment.join('#')}` : ''}`;
}

/** The secret values a database URL holds, as written and decoded: never to appear in a message. */
export function databaseUrlSecrets(url: string): string[] {
  const out: string[] = [];
  try {
    const password = new URL(url).password;
    if (password) out.push(password, decoded(password));
  } catch {
    // pg reports an unusable URL itself, and that message goes through redact() too.
  }
  for (const [name, value] of queryParams(url)) if (value !== '' && isSecretParam(name)) out.push(value, decoded(value));
  return out.filter((s) => s.length > 0);
}
