// GitLab CI ID tokens (OIDC), checked with jose: the issuer must be one of the GitLab servers
// serve was told about, the signature RS256 against the issuer's published keys, `aud` the public
// URL of serve, and `exp`/`nbf` within 60 s of leeway.
// https://docs.gitlab.com/ci/secrets/id_token_authentication/ (the claims: iss, sub, aud, exp,
// nbf, project_path, pipeline_id, job_id, sha, ref, ref_type, ...)
// https://openid.net/specs/openid-connect-discovery-1_0.html (/.well-known/openid-configuration →
// jwks_uri; GitLab's is /oauth/discovery/keys)
import { type JWTPayload, createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { readBounded } from '../bounded-body.js';
import { AuthError, NetworkError } from '../errors.js';
import { checkGitlabUrl } from './api.js';

/** The claims of a GitLab ID token that a build report is checked against. */
export interface IdTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  projectPath: string;
  pipelineId: string;
  jobId: string;
  sha: string;
  ref: string;
  refType: string;
}

/** Leeway on exp and nbf. */
const CLOCK_TOLERANCE_SECONDS = 60;
/** An unknown kid refetches the issuer's keys at most this often. */
const JWKS_COOLDOWN_MS = 60_000;
/** Known keys are used this long before they are fetched again. */
const JWKS_MAX_AGE_MS = 10 * 60_000;
const MAX_DISCOVERY_BYTES = 256 * 1024;
const MAX_TOKEN_LENGTH = 16 * 1024;

interface IdTokenVerifierOptions {
  /** The GitLab servers whose tokens are accepted (each checked with checkGitlabUrl). */
  issuers: readonly string[];
  /** The audience a token must name: serve's public URL. */
  audience: string;
  fetch: typeof fetch;
  now: () => Date;
}

function upstream(message: string, cause?: unknown): NetworkError {
  return new NetworkError(message, { hint: 'check that tagtrail serve reaches the GitLab server named with --gitlab-url', ...(cause !== undefined ? { cause } : {}) });
}

function unauthorized(message: string, cause?: unknown): AuthError {
  return new AuthError('UNAUTHORIZED', message, { hint: 'send a GitLab CI ID token (id_tokens) whose aud is the public URL of tagtrail serve', ...(cause !== undefined ? { cause } : {}) });
}

/** GitLab writes the ids as strings; accept numbers too. */
function claimText(payload: JWTPayload, name: string): string {
  const v = payload[name];
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  throw unauthorized(`the ID token has no ${name} claim`);
}

/** Issuers compare as GitLab writes them: the server URL, without a trailing slash. */
function normalizeIssuer(value: string): string {
  return value.replace(/\/+$/, '');
}

export class IdTokenVerifier {
  private readonly issuers: Map<string, URL>;
  private readonly keySets = new Map<string, Promise<ReturnType<typeof createRemoteJWKSet>>>();

  constructor(private readonly options: IdTokenVerifierOptions) {
    this.issuers = new Map(options.issuers.map((i) => {
      const u = checkGitlabUrl(i, '--gitlab-url');
      return [normalizeIssuer(u.href), u];
    }));
  }

  /** The claims of a token that passes every check; AuthError (401) otherwise. Nothing else is fetched for a token from another issuer. */
  async verify(token: string): Promise<IdTokenClaims> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw unauthorized('the Authorization header holds no ID token');
    let iss: unknown;
    try {
      decodeProtectedHeader(token);
      iss = decodeJwt(token).iss;
    } catch (err) {
      throw unauthorized('the ID token is not a JWT', err);
    }
    const issuer = typeof iss === 'string' ? this.issuers.get(normalizeIssuer(iss)) : undefined;
    if (issuer === undefined || typeof iss !== 'string') throw unauthorized('the ID token comes from a GitLab server this tagtrail does not trust (its iss is not one of --gitlab-url)');
    const keys = await this.keySet(normalizeIssuer(iss), issuer);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: iss,
        audience: this.options.audience,
        algorithms: ['RS256'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: this.options.now(),
        requiredClaims: ['exp', 'iat', 'sub'],
      }));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw unauthorized(`the ID token was refused (${typeof code === 'string' ? code : 'invalid'})`, err);
    }
    const aud = Array.isArray(payload.aud) ? this.options.audience : String(payload.aud);
    return {
      iss,
      aud,
      sub: claimText(payload, 'sub'),
      projectPath: claimText(payload, 'project_path'),
      pipelineId: claimText(payload, 'pipeline_id'),
      jobId: claimText(payload, 'job_id'),
      sha: claimText(payload, 'sha').toLowerCase(),
      ref: claimText(payload, 'ref'),
      refType: typeof payload.ref_type === 'string' ? payload.ref_type : '',
    };
  }

  /** The issuer's key set, found through its OIDC discovery document once, cached by jose. */
  private keySet(key: string, issuer: URL): Promise<ReturnType<typeof createRemoteJWKSet>> {
    let found = this.keySets.get(key);
    if (!found) {
      found = this.discover(key, issuer);
      // A failed discovery is tried again with the next token.
      found.catch(() => this.keySets.delete(key));
      this.keySets.set(key, found);
    }
    return found;
  }

  private async discover(key: string, issuer: URL): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const url = new URL(`${issuer.href.replace(/\/+$/, '')}/.well-known/openid-configuration`);
    let doc: { issuer?: unknown; jwks_uri?: unknown };
    try {
      const res = await this.options.fetch(url, { headers: { accept: 'application/json' }, redirect: 'error' });
      const bytes = await readBounded(res.body, res.headers.get('content-length'), MAX_DISCOVERY_BYTES, () => upstream(`the OIDC discovery document of ${issuer.host} is too large`));
      if (res.status !== 200) throw upstream(`the OIDC discovery document of ${issuer.host} answered HTTP ${res.status}`);
      doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as typeof doc;
    } catch (err) {
      if (err instanceof NetworkError) throw err;
      // GitLab unreachable or answering nonsense: an upstream failure (502), not a bad token.
      throw upstream(`the OIDC discovery document of ${issuer.host} could not be read`, err);
    }
    if (typeof doc.issuer !== 'string' || normalizeIssuer(doc.issuer) !== key || typeof doc.jwks_uri !== 'string') {
      throw unauthorized(`the OIDC discovery document of ${issuer.host} names another issuer or no jwks_uri`);
    }
    const jwks = checkGitlabUrl(doc.jwks_uri, 'jwks_uri');
    // The keys must come from the issuer itself, as GitLab serves them (/oauth/discovery/keys).
    if (jwks.origin !== issuer.origin) throw unauthorized(`the OIDC discovery document of ${issuer.host} puts its keys on another server`);
    return createRemoteJWKSet(jwks, {
      cooldownDuration: JWKS_COOLDOWN_MS,
      cacheMaxAge: JWKS_MAX_AGE_MS,
      [customFetch]: (input: string | URL | Request, init?: RequestInit) => this.options.fetch(input, init),
    });
  }
}
