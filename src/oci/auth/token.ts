// Bearer token fetches (the distribution token spec; GitLab's /jwt/auth) and their cache.
import { AuthError, NetworkError, RegistryError } from '../../errors.js';
import type { Credential } from './credentials.js';

export interface Scope {
  /** "repository" or "registry" (for the catalog). */
  readonly type: 'repository' | 'registry';
  readonly name: string;
  readonly actions: readonly string[];
}

export function scopeString(s: Scope): string {
  return `${s.type}:${s.name}:${s.actions.join(',')}`;
}

export function pullScope(repository: string): Scope {
  return { type: 'repository', name: repository, actions: ['pull'] };
}

export function pushScope(repository: string): Scope {
  return { type: 'repository', name: repository, actions: ['pull', 'push'] };
}

export const CATALOG_SCOPE: Scope = { type: 'registry', name: 'catalog', actions: ['*'] };

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

/** Refresh a little before expiry so a long request does not start with a dying token. */
const EXPIRY_MARGIN_MS = 5_000;
/** The token spec's default lifetime when the server names none. */
const DEFAULT_EXPIRES_IN_S = 60;

export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();
  constructor(private readonly now: () => number) {}

  // Keyed by the registry too: a token is sent only to the registry whose challenge obtained it,
  // even when two registries name the same realm.
  private key(registry: string, realm: string, service: string, scope: string): string {
    return `${registry}\u0000${realm}\u0000${service}\u0000${scope}`;
  }

  /** A valid token for the scope, or one for a wider scope of the same repository. */
  get(registry: string, realm: string, service: string, scope: Scope): string | undefined {
    const candidates = [scopeString(scope)];
    if (scope.type === 'repository' && scope.actions.length === 1 && scope.actions[0] === 'pull') {
      candidates.unshift(scopeString(pushScope(scope.name)));
    }
    for (const c of candidates) {
      const t = this.tokens.get(this.key(registry, realm, service, c));
      if (t && t.expiresAt - EXPIRY_MARGIN_MS > this.now()) return t.token;
    }
    return undefined;
  }

  set(registry: string, realm: string, service: string, scope: Scope, token: string, expiresInS: number): void {
    this.tokens.set(this.key(registry, realm, service, scopeString(scope)), { token, expiresAt: this.now() + expiresInS * 1000 });
  }

  invalidate(token: string): void {
    for (const [k, v] of this.tokens) if (v.token === token) this.tokens.delete(k);
  }
}

interface TokenResponse {
  readonly token: string;
  readonly expiresIn: number;
}

/** Parses a token endpoint's answer; never echoes it into an error. */
export function parseTokenResponse(text: string): TokenResponse {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new RegistryError('the token service answered with something other than JSON', 502);
  }
  const b = body as { token?: unknown; access_token?: unknown; expires_in?: unknown };
  const token = typeof b.token === 'string' && b.token !== '' ? b.token : typeof b.access_token === 'string' ? b.access_token : '';
  if (token === '') throw new RegistryError('the token service answered without a token', 502);
  const expiresIn = typeof b.expires_in === 'number' && b.expires_in > 0 ? b.expires_in : DEFAULT_EXPIRES_IN_S;
  return { token, expiresIn };
}

export function basicAuthorization(c: Credential): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

/** A realm we will send credentials to: http(s) only, no downgrade, no link-local or metadata hosts. */
export function checkRealm(realm: string, registryUrl: string): URL {
  let u: URL;
  try {
    u = new URL(realm);
  } catch {
    throw new RegistryError(`the registry named an invalid token realm`, 502);
  }
  const registryHttps = new URL(registryUrl).protocol === 'https:';
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new AuthError('DENIED', `the registry named a token realm with scheme ${u.protocol}, which tagtrail will not use`);
  if (registryHttps && u.protocol === 'http:') {
    throw new AuthError('DENIED', `the registry (https) sent its token realm over plain http (${u.host}); tagtrail will not send credentials there`, {
      hint: 'fix the registry\'s auth.token.realm to use https',
    });
  }
  if (u.username !== '' || u.password !== '') throw new AuthError('DENIED', 'the registry named a token realm with a user name or password in it, which tagtrail will not use');
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (isLinkLocalOrMetadataHost(host)) {
    throw new AuthError('DENIED', `the registry named a token realm on a link-local or cloud metadata address (${host}); tagtrail will not contact it`);
  }
  return u;
}

/** Cloud metadata services by name; a trailing dot (a fully qualified name) is the same host. */
const METADATA_NAMES = new Set(['metadata', 'metadata.google.internal', 'instance-data', 'instance-data.ec2.internal']);

/**
 * Link-local addresses (169.254.0.0/16, fe80::/10) and the metadata services that live there or
 * nearby (AWS fd00:ec2::254, Alibaba 100.100.100.200), also written as IPv4-mapped or NAT64
 * IPv6 (WHATWG URL turns [::ffff:169.254.169.254] into [::ffff:a9fe:a9fe]). Takes a URL's
 * hostname without brackets, lowercased; names are not resolved.
 */
export function isLinkLocalOrMetadataHost(host: string): boolean {
  const name = host.replace(/\.+$/, '');
  if (METADATA_NAMES.has(name)) return true;
  if (/^169\.254\./.test(name) || name === '100.100.100.200') return true;
  if (/^fe[89ab][0-9a-f]:/.test(name) || name === 'fd00:ec2::254') return true;
  // IPv4 embedded in IPv6 (mapped ::ffff:, compatible ::, NAT64 64:ff9b::), in the hex form URL writes.
  const embedded = /^(?:::ffff:|::|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(name);
  if (embedded) {
    const hi = parseInt(embedded[1] as string, 16);
    const lo = parseInt(embedded[2] as string, 16);
    return isLinkLocalOrMetadataHost(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
  }
  return false;
}

export function tokenFetchError(status: number, realmHost: string, cred: Credential | undefined): Error {
  if (status === 401 || status === 403) {
    return new AuthError('UNAUTHORIZED', `the token service at ${realmHost} refused ${cred ? `the credentials from ${cred.source}` : 'an anonymous request'} (HTTP ${status})`, {
      hint: cred ? 'check the user name and password or token, and that it may read (and for annotate, write) the repository' : 'log in: --username USER --password-stdin, TAGTRAIL_REGISTRY_USER/PASSWORD, or CI_REGISTRY_USER/PASSWORD in GitLab CI',
    });
  }
  if (status >= 500) return new NetworkError(`the token service at ${realmHost} failed with HTTP ${status}`);
  return new RegistryError(`the token service at ${realmHost} answered HTTP ${status}`, status);
}
