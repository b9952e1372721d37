// The Host check: a page on another site that points its own DNS name at serve (DNS rebinding)
// sends its own name as Host, so only serve's own name is accepted.
//   With --public-url: its host only (421 otherwise); a loopback Host only for /healthz, so a
//   local probe works.
//   Without it: localhost and loopback addresses only.
// Machine endpoints (paths.ts) are exempt: they authenticate with their own secrets.
import type { MiddlewareHandler } from 'hono';
import { isLoopbackHost } from '../../oci/reference.js';
import { isMachineEndpoint } from './paths.js';

/** The Host header as a URL host (lowercase, default port dropped), or undefined when it is not one. */
function normalHost(host: string | undefined, protocol: string): string | undefined {
  if (host === undefined || host === '' || /[/?#@\\\s]/.test(host)) return undefined;
  try {
    return new URL(`${protocol}//${host}`).host;
  } catch {
    return undefined;
  }
}

function hostAllowed(host: string | undefined, path: string, publicUrl: URL | undefined): boolean {
  const normal = normalHost(host, publicUrl?.protocol ?? 'http:');
  if (normal === undefined) return false;
  if (publicUrl === undefined) return isLoopbackHost(normal);
  if (normal === publicUrl.host) return true;
  return path === '/healthz' && isLoopbackHost(normal);
}

export function hostCheck(publicUrl: URL | undefined): MiddlewareHandler {
  return async (c, next) => {
    if (isMachineEndpoint(c.req.method, c.req.path) || hostAllowed(c.req.header('host'), c.req.path, publicUrl)) return next();
    // 421 Misdirected Request (RFC 9110 §15.5.20): this server does not answer for that name.
    return c.json({ error: { code: 'MISDIRECTED', message: 'this server does not answer for that host name' } }, 421);
  };
}
