// Who may read the catalog, as serve is told at start-up: --auth, --public-url, --metrics-token.
// An open catalog on an address others can reach must be a choice someone wrote down.
import { UsageError } from '../../errors.js';
import { isLoopbackHost } from '../../oci/reference.js';

type AuthMode = 'none' | 'gitlab';
const AUTH_MODES: readonly AuthMode[] = ['none', 'gitlab'];

export interface AccessSettings {
  mode: AuthMode;
  /** The URL people use to reach serve: the Host check, the sign-in redirect, Secure cookies. */
  publicUrl?: URL;
  /** A bearer token that opens /metrics on a listen address others can reach. */
  metricsToken?: string;
  /** serve listens on a loopback address only (127.0.0.0/8, ::1, localhost). */
  loopbackListen: boolean;
}

/** A --listen host name (IPv6 without brackets) is loopback. */
function isLoopbackListen(hostname: string): boolean {
  return isLoopbackHost(hostname.includes(':') ? `[${hostname}]` : hostname);
}

/** The base URL people reach serve at: http(s), no credentials, query, fragment or path. */
function parsePublicUrl(value: string): URL {
  let u: URL;
  try {
    u = new URL(value.trim());
  } catch {
    throw new UsageError(`--public-url ${JSON.stringify(value.slice(0, 200))} is not an absolute URL`, { hint: 'e.g. --public-url https://tagtrail.example.com' });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UsageError(`--public-url must be an http or https URL, not ${u.protocol}`);
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '' || u.pathname.replace(/\/+$/, '') !== '') {
    throw new UsageError('--public-url is the origin serve is reached at, without a path, query, fragment or credentials', { hint: 'e.g. --public-url https://tagtrail.example.com' });
  }
  return new URL(u.origin);
}

const MIN_METRICS_TOKEN_LENGTH = 16;

export function accessSettings(input: { auth?: string; publicUrl?: string; metricsToken?: string; listenHostname: string }): AccessSettings {
  const loopbackListen = isLoopbackListen(input.listenHostname);
  const given = input.auth?.trim();
  if (given !== undefined && given !== '' && !(AUTH_MODES as readonly string[]).includes(given)) {
    throw new UsageError(`--auth ${JSON.stringify(given.slice(0, 40))} is not one of ${AUTH_MODES.join(', ')}`, { hint: '--auth gitlab signs people in with GitLab; --auth none serves the catalog to anyone who reaches it' });
  }
  if ((given === undefined || given === '') && !loopbackListen) {
    throw new UsageError(`serve listens on ${input.listenHostname}, which others can reach, and --auth was not given`, {
      hint: 'pass --auth gitlab to sign people in with GitLab, or --auth none (TAGTRAIL_AUTH=none) to serve the catalog to anyone who reaches it',
    });
  }
  const metricsToken = input.metricsToken;
  if (metricsToken !== undefined && metricsToken.length < MIN_METRICS_TOKEN_LENGTH) {
    throw new UsageError(`the metrics token must be at least ${MIN_METRICS_TOKEN_LENGTH} characters`, { hint: 'make one with: openssl rand -hex 32' });
  }
  return {
    mode: (given === undefined || given === '' ? 'none' : given) as AuthMode,
    loopbackListen,
    ...(input.publicUrl !== undefined && input.publicUrl.trim() !== '' ? { publicUrl: parsePublicUrl(input.publicUrl) } : {}),
    ...(metricsToken !== undefined ? { metricsToken } : {}),
  };
}
