// WWW-Authenticate parsing (RFC 7235): a scheme followed by auth-params, quoted or not.

export interface Challenge {
  /** Lowercased: "bearer" or "basic". */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/** Parses one or more challenges; unparseable tails are dropped rather than guessed at. */
export function parseChallenges(header: string | null | undefined): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  let s = header.trim();
  let current: { scheme: string; params: Record<string, string> } | undefined;
  while (s.length > 0) {
    s = s.replace(/^[\s,]+/, '');
    const m = TOKEN.exec(s);
    if (!m) break;
    const word = m[0];
    const after = s.slice(word.length).replace(/^\s+/, '');
    if (after.startsWith('=') && current) {
      // auth-param: name=value
      let rest = after.slice(1).replace(/^\s+/, '');
      let value: string;
      if (rest.startsWith('"')) {
        let i = 1;
        value = '';
        while (i < rest.length && rest[i] !== '"') {
          if (rest[i] === '\\' && i + 1 < rest.length) i++;
          value += rest[i];
          i++;
        }
        rest = rest.slice(i + 1);
      } else {
        // Lenient: some servers send unquoted URLs, which are not RFC tokens.
        const v = /^[^,\s]*/.exec(rest);
        value = v ? v[0] : '';
        rest = rest.slice(value.length);
      }
      current.params[word.toLowerCase()] = value;
      s = rest;
    } else {
      current = { scheme: word.toLowerCase(), params: Object.create(null) as Record<string, string> };
      out.push(current);
      s = after;
    }
  }
  return out;
}
