// /metrics tells the catalog's size and traffic: open on a loopback --listen, elsewhere only to a
// scraper that presents the bearer --metrics-token.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export function metricsGuard(options: { loopbackListen: boolean; token?: string }): MiddlewareHandler {
  const expected = options.token !== undefined ? digest(options.token) : undefined;
  return async (c, next) => {
    if (c.req.path !== '/metrics' || options.loopbackListen) return next();
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    // Compared as hashes in constant time: the length of the token leaks nothing either.
    if (expected && m && timingSafeEqual(digest(m[1] as string), expected)) return next();
    c.header('www-authenticate', 'Bearer realm="tagtrail metrics"');
    return c.json({ error: { code: 'UNAUTHORIZED', message: expected ? 'present the metrics token as Authorization: Bearer' : 'metrics are served on a loopback --listen, or with --metrics-token' } }, 401);
  };
}
