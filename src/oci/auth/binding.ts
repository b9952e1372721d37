// Where registry credentials may go. One owner for two rules:
//   1. Explicit credentials (--username/--password-stdin, TAGTRAIL_REGISTRY_USER/PASSWORD) are for
//      the registry the command works on, or the registries listed in TAGTRAIL_REGISTRY_HOSTS
//      (only those, when the command works on several).
//      (CI_REGISTRY_USER is bound to $CI_REGISTRY and docker config entries to their own host
//      by the resolver already.)
//   2. Basic credentials, whatever their source, go to a token realm only when the realm's host
//      name is the registry's own, a trusted realm host (--trusted-realm-host, the GitLab servers
//      the command is configured with), or a registry's well-known token service. Host names
//      are compared without the port: GitLab serves /jwt/auth on its own host while its registry
//      listens on :5050 of the same name. Any other realm is refused before anything is sent.
import { AuthError, UsageError } from '../../errors.js';
import { DOCKER_HUB, hostOnly, isValidRegistryHost } from '../reference.js';

/** "https://index.docker.io/v1/" → "index.docker.io"; "registry.example.com:5000" stays. */
export function normalizeAuthKey(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '');
  const slash = k.indexOf('/');
  if (slash >= 0) k = k.slice(0, slash);
  k = k.toLowerCase();
  if (k === 'docker.io' || k === 'registry-1.docker.io' || k === 'index.docker.io') return DOCKER_HUB;
  return k;
}

/** Registries whose token service lives on another host, by design of their operator. */
const KNOWN_TOKEN_SERVICES: Readonly<Record<string, readonly string[]>> = {
  'registry.gitlab.com': ['gitlab.com'],
  'index.docker.io': ['auth.docker.io'],
  'registry-1.docker.io': ['auth.docker.io'],
};

/** A host name as compared here: lowercased, without IPv6 brackets or a trailing dot. */
function comparableHostname(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, '').replace(/\.+$/, '').toLowerCase();
}

/**
 * A comma-separated list of host[:port] (TAGTRAIL_REGISTRY_HOSTS), in the form registries are
 * keyed by. A URL is taken for its host.
 */
export function parseRegistryHosts(value: string | undefined, what: string): string[] {
  if (value === undefined || value.trim() === '') return [];
  return value.split(',').map((raw) => {
    const entry = raw.trim().replace(/^https?:\/\//i, '').replace(/\/+$/, '');
    if (!isValidRegistryHost(entry)) {
      throw new UsageError(`${what}: ${JSON.stringify(raw.trim().slice(0, 100))} is not a host[:port]`, { hint: 'list registries as host[:port], comma-separated, e.g. registry.example.com,registry.example.com:5050' });
    }
    return normalizeAuthKey(entry);
  });
}

/**
 * A host whose token realm may receive Basic credentials (--trusted-realm-host): a host name, or
 * a host:port or URL, of which only the host name counts.
 */
export function parseTrustedRealmHost(value: string, what = '--trusted-realm-host'): string {
  const v = value.trim();
  let host: string;
  try {
    host = /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? new URL(v).host : v;
  } catch {
    host = '';
  }
  if (host === '' || !isValidRegistryHost(host)) {
    throw new UsageError(`${what} ${JSON.stringify(v.slice(0, 100))} is not a host name`, { hint: 'name the token service host, e.g. --trusted-realm-host gitlab.example.com' });
  }
  return comparableHostname(hostOnly(host));
}

/** True when Basic credentials for this registry may be sent to a realm at this URL. */
export function realmMayReceiveCredentials(realm: URL, registry: string, trustedRealmHosts: readonly string[]): boolean {
  const realmHost = comparableHostname(realm.hostname);
  const registryHost = comparableHostname(hostOnly(registry));
  if (realmHost === registryHost) return true;
  if (trustedRealmHosts.some((h) => comparableHostname(h) === realmHost)) return true;
  return (KNOWN_TOKEN_SERVICES[registryHost] ?? []).includes(realmHost);
}

export function untrustedRealmError(registry: string, realm: URL, source: string): AuthError {
  const host = comparableHostname(realm.hostname);
  return new AuthError('DENIED', `${registry} sent tagtrail to the token realm host ${host}, which is neither ${registry}'s own host nor a trusted realm host; the credentials from ${source} were not sent there`, {
    hint: `if ${host} is the token service of ${registry} (a GitLab server, say), name it with --trusted-realm-host ${host} or TAGTRAIL_TRUSTED_REALM_HOSTS`,
  });
}

/**
 * The registries explicit credentials are for: those listed in TAGTRAIL_REGISTRY_HOSTS, and the
 * command's registry when it works on one. A command on several registries uses them for the
 * listed ones only (the others keep their own sources, such as CI_REGISTRY_USER), and refuses
 * to guess when none of its registries is listed, so one password never reaches a registry it
 * was not meant for.
 */
export function explicitCredentialHosts(commandRegistries: readonly string[], listed: readonly string[], source: string): Set<string> {
  const command = [...new Set(commandRegistries.map(normalizeAuthKey))];
  if (command.length <= 1) return new Set([...listed, ...command]);
  if (!command.some((r) => listed.includes(r))) {
    throw new UsageError(`the credentials from ${source} are for one registry, and this command works on ${command.join(', ')}, none of them in TAGTRAIL_REGISTRY_HOSTS`, {
      hint: `name the registries they are for in TAGTRAIL_REGISTRY_HOSTS (e.g. TAGTRAIL_REGISTRY_HOSTS=${command[command.length - 1] ?? ''}); the others use their own credentials (CI_REGISTRY_USER, DOCKER_AUTH_CONFIG)`,
    });
  }
  return new Set(listed);
}
