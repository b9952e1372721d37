// A token server that answers like GitLab's /jwt/auth for a registry in auth.token mode: HTTP
// Basic credentials in, a JWT out, signed RS256 by a key whose certificate the registry trusts.
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from './cleanup.js';
import { run } from './exec.js';
import { LOOPBACK } from './ports.js';

/** Distribution 2.8 accepts a token up to this long after its exp (and before its nbf). */
export const DISTRIBUTION_LEEWAY_SECONDS = 60;

export interface IssuerUser {
  password: string;
  /**
   * The actions this user may have on a repository, e.g. () => ['pull', 'push'].
   * '*' allows every requested action. Default: pull and push on every repository.
   */
  access?: (repository: string) => readonly string[];
  /** May list the catalog (scope registry:catalog:*). Default false. */
  catalog?: boolean;
}

export interface TokenIssuerOptions {
  /** By user name, e.g. { 'gitlab-ci-token': { password: 'job-token-123' } }. */
  users?: Record<string, IssuerUser>;
  /** Repositories anyone may pull without credentials. Default: none. */
  publicRepositories?: (repository: string) => boolean;
  /** The registry's auth.token.service, checked against the JWT's aud. Default container_registry. */
  service?: string;
  /** The JWT's iss, the registry's auth.token.issuer. Default gitlab-issuer. */
  issuer?: string;
  /** Token lifetime in seconds, reported as expires_in. Default 300. */
  expiresIn?: number;
  /**
   * Distribution adds 60 s of leeway to exp, so a token would live 60 s longer at the registry
   * than expires_in says. By default the issuer sets exp that much earlier so the registry starts
   * refusing the token once expires_in has passed (within a second more: claims are whole
   * seconds), which lets a test see a token expire within seconds. The catch: exp in the JWT is then earlier than iat + expires_in (clients treat the
   * token as opaque and go by expires_in, as the token spec says). Set false for honest exp.
   */
  compensateRegistryLeeway?: boolean;
  /**
   * How the JWT names its signing key. 'kid' (what GitLab sends): the libtrust key ID of the
   * public key, which distribution matches against the keys of its rootcertbundle. 'x5c': the
   * certificate itself, which distribution verifies against the bundle.
   */
  keyHeader?: 'kid' | 'x5c';
  /**
   * Checks Basic credentials instead of `users`: the user they stand for, or undefined to refuse
   * them with 401. The GitLab stand-in uses it to take access tokens as passwords.
   */
  authenticate?: (user: string, password: string) => IssuerUser | undefined;
}

export interface TokenRequestRecord {
  /** The Basic user name, if any credentials were sent. Passwords are never recorded. */
  user?: string;
  service?: string;
  /** Each scope parameter as sent, e.g. repository:group/app:pull,push. */
  scopes: string[];
  /** 200 with a token, 401 for bad credentials, 400 for a malformed request. */
  status: number;
  /** The access the token granted, as in its access claim. */
  granted: AccessEntry[];
}

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenIssuer {
  /** http://127.0.0.1:PORT/jwt/auth, the registry's auth.token.realm. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate of the signing key, for the registry's auth.token.rootcertbundle. */
  certPath: string;
  /** The libtrust key ID of the signing key, as in the JWT's kid header. */
  keyId: string;
  /** Tokens issued so far (200 answers). */
  issued(): number;
  /** Every request to the realm, in order. */
  requests: TokenRequestRecord[];
  setExpiresIn(seconds: number): void;
  /** Signs a token directly, without an HTTP request; not counted in issued(). */
  mintToken(claims: { sub?: string; access: AccessEntry[]; expiresIn?: number }): string;
  stop(): Promise<void>;
}

/** The realm without its own server: what the GitLab stand-in mounts at /jwt/auth. */
export interface TokenService extends Omit<TokenIssuer, 'realm' | 'stop'> {
  /** Answers a GET /jwt/auth; `url` is the request URL (any origin). */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): void;
  /** Removes the key and certificate. */
  dispose(): Promise<void>;
}

export async function startTokenIssuer(options: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const service = await createTokenService(options);
  try {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://issuer.invalid');
      if (req.method !== 'GET' || url.pathname !== '/jwt/auth') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
        return;
      }
      service.handle(req, res, url);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, LOOPBACK, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const { handle: _handle, dispose, ...rest } = service;
    return {
      ...rest,
      realm: `http://${LOOPBACK}:${port}/jwt/auth`,
      stop: async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await dispose();
      },
    };
  } catch (err) {
    await service.dispose();
    throw err;
  }
}

export async function createTokenService(options: TokenIssuerOptions = {}): Promise<TokenService> {
  const dir = await makeTempDir('issuer');
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    // Node can make keys but not certificates; openssl makes both in one go.
    await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
      '-subj', '/CN=tagtrail test token issuer', '-keyout', keyPath, '-out', certPath,
    ]);
    const privateKey = createPrivateKey(await readFile(keyPath));
    const certPem = await readFile(certPath);
    const cert = new X509Certificate(certPem);
    const keyId = libtrustKeyId(createPublicKey(certPem));
    const x5c = cert.raw.toString('base64');

    const service = options.service ?? 'container_registry';
    const issuerName = options.issuer ?? 'gitlab-issuer';
    const users = options.users ?? {};
    const compensate = options.compensateRegistryLeeway ?? true;
    const keyHeader = options.keyHeader ?? 'kid';
    let expiresIn = options.expiresIn ?? 300;
    let issuedCount = 0;
    const requests: TokenRequestRecord[] = [];

    const mint = (sub: string, access: AccessEntry[], lifetime: number): string => {
      const nowMs = Date.now();
      const now = Math.floor(nowMs / 1000);
      // Rounded up, so the token lives at least `lifetime` seconds (claims are whole seconds).
      const expires = Math.ceil(nowMs / 1000) + lifetime;
      const header = keyHeader === 'kid' ? { typ: 'JWT', alg: 'RS256', kid: keyId } : { typ: 'JWT', alg: 'RS256', x5c: [x5c] };
      const claims = {
        iss: issuerName,
        sub,
        // A single string: distribution 2.8 unmarshals aud into a string and rejects an array.
        aud: service,
        exp: expires - (compensate ? DISTRIBUTION_LEEWAY_SECONDS : 0),
        nbf: now,
        iat: now,
        jti: randomUUID(),
        access,
      };
      return signJwt(header, claims, privateKey);
    };

    const handle = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
      const scopes = url.searchParams.getAll('scope');
      const requestService = url.searchParams.get('service') ?? undefined;
      const record: TokenRequestRecord = { scopes, status: 0, granted: [], ...(requestService !== undefined ? { service: requestService } : {}) };
      requests.push(record);

      const credentials = parseBasic(req.headers.authorization);
      let user: IssuerUser | undefined;
      if (credentials) {
        record.user = credentials.user;
        if (options.authenticate) {
          user = options.authenticate(credentials.user, credentials.password);
        } else {
          user = users[credentials.user];
          if (user && !timingSafeEqualStrings(user.password, credentials.password)) user = undefined;
        }
        if (!user) {
          record.status = 401;
          res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="GitLab"' });
          res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'HTTP Basic: Access denied' }] }));
          return;
        }
      }
      if (requestService !== undefined && requestService !== service) {
        record.status = 400;
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"unknown service"}');
        return;
      }

      const granted: AccessEntry[] = [];
      for (const scope of scopes.flatMap((s) => s.split(' '))) {
        const parsed = parseScope(scope);
        if (!parsed) continue;
        const actions = grantedActions(parsed, user, options.publicRepositories);
        if (actions.length > 0) granted.push({ type: parsed.type, name: parsed.name, actions });
      }
      record.granted = granted;
      record.status = 200;
      issuedCount += 1;
      const token = mint(credentials?.user ?? '', granted, expiresIn);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() }));
    };

    return {
      handle,
      service,
      issuer: issuerName,
      certPath,
      keyId,
      issued: () => issuedCount,
      requests,
      setExpiresIn: (seconds: number) => {
        expiresIn = seconds;
      },
      mintToken: (claims) => mint(claims.sub ?? '', claims.access, claims.expiresIn ?? expiresIn),
      dispose: () => removeTempDir(dir),
    };
  } catch (err) {
    await removeTempDir(dir);
    throw err;
  }
}

/**
 * libtrust's key ID, which distribution computes for each key of its rootcertbundle and matches
 * against the JWT's kid: the SHA-256 of the DER SubjectPublicKeyInfo, its first 240 bits in
 * base32, in groups of four joined by ':'.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  const b32 = base32(hash);
  return b32.match(/.{4}/g)?.join(':') ?? b32;
}

function base32(bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function signJwt(header: object, claims: object, key: KeyObject): string {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  // RS256 is RSASSA-PKCS1-v1_5 with SHA-256, Node's default padding for an RSA key.
  const signature = sign('sha256', Buffer.from(input), key);
  return `${input}.${base64url(signature)}`;
}

/** Splits the payload of a JWT, for tests that check what was granted. No verification. */
export function decodeJwt(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [h, c] = token.split('.');
  if (h === undefined || c === undefined) throw new Error('not a JWT');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as Record<string, unknown>,
  };
}

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { user: decoded, password: '' };
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function timingSafeEqualStrings(a: string, b: string): boolean {
  // Test code, but no reason to teach a bad habit: compare digests, not strings.
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return ha.equals(hb);
}

/** type:name:actions; the name may itself hold colons (a host:port in some clients' scopes). */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return {
    // repository(plugin):name:pull carries a resource class; the type is what precedes it.
    type: scope.slice(0, first).replace(/\(.*\)$/, ''),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',').filter((a) => a.length > 0),
  };
}

function grantedActions(
  scope: { type: string; name: string; actions: string[] },
  user: IssuerUser | undefined,
  isPublic: ((repository: string) => boolean) | undefined,
): string[] {
  if (scope.type === 'registry') {
    return scope.name === 'catalog' && user?.catalog === true ? scope.actions : [];
  }
  if (scope.type !== 'repository') return [];
  let allowed: readonly string[];
  if (user) allowed = user.access ? user.access(scope.name) : ['pull', 'push'];
  else allowed = isPublic?.(scope.name) ? ['pull'] : [];
  if (allowed.includes('*')) return scope.actions;
  return scope.actions.filter((a) => allowed.includes(a));
}
