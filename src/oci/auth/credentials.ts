// Where registry credentials come from, first match wins:
//   1. --username with --password-stdin    } for the command's registry and those listed in
//   2. TAGTRAIL_REGISTRY_USER / _PASSWORD  } TAGTRAIL_REGISTRY_HOSTS only (binding.ts)
//   3. CI_REGISTRY_USER / CI_REGISTRY_PASSWORD, when the image's host is $CI_REGISTRY
//   4. DOCKER_AUTH_CONFIG (the JSON GitLab runners accept)
//   5. $DOCKER_CONFIG/config.json, else ~/.docker/config.json, "auths"
// Resolution is lazy: nothing is read until a registry asks for credentials.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../errors.js';
import { explicitCredentialHosts, normalizeAuthKey, parseRegistryHosts } from './binding.js';

export { normalizeAuthKey };

export interface Credential {
  readonly username: string;
  readonly password: string;
  /** Where it came from, for --debug ("CI_REGISTRY_USER"); never the secret itself. */
  readonly source: string;
  /** When set, the only token realm hosts (host[:port]) this credential may be sent to. */
  readonly realmHosts?: readonly string[];
}

export type CredentialResolver = (registry: string) => Credential | undefined;

interface CredentialSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** --username and the password read from stdin. */
  readonly explicit?: { username: string; password: string };
  /**
   * The registries (host[:port]) the command works on: explicit credentials are for these (and
   * those in TAGTRAIL_REGISTRY_HOSTS) only.
   */
  readonly registries: readonly string[];
  readonly readFile?: (path: string) => string | undefined;
}

function defaultReadFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

function fromDockerConfig(text: string, registry: string, source: string): Credential | undefined {
  let cfg: DockerConfig;
  try {
    cfg = JSON.parse(text) as DockerConfig;
  } catch {
    throw new UsageError(`${source} is not valid JSON`, { hint: 'fix or unset it; it should look like {"auths": {"registry.example.com": {"auth": "base64(user:password)"}}}' });
  }
  if (typeof cfg !== 'object' || cfg === null) return undefined;
  const want = normalizeAuthKey(registry);
  for (const [key, entry] of Object.entries(cfg.auths ?? {})) {
    if (normalizeAuthKey(key) !== want || typeof entry !== 'object' || entry === null) continue;
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0) throw new UsageError(`${source}: the "auth" entry for ${want} is not base64 of user:password`, { hint: 'encode it with: printf "%s:%s" USER PASSWORD | base64' });
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source };
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password, source };
    if (typeof entry.identitytoken === 'string') {
      throw new UsageError(`${source} holds an identity token for ${want}, which tagtrail does not support`, {
        hint: 'log in with a user name and password or token instead: --username USER --password-stdin',
      });
    }
  }
  const helper = Object.entries(cfg.credHelpers ?? {}).find(([k]) => normalizeAuthKey(k) === want)?.[1] ?? cfg.credsStore;
  if (helper) {
    throw new UsageError(`${source} sends ${want} to the credential helper docker-credential-${helper}, which tagtrail does not run`, {
      hint: 'pass credentials with --username USER --password-stdin, or set TAGTRAIL_REGISTRY_USER and TAGTRAIL_REGISTRY_PASSWORD',
    });
  }
  return undefined;
}

export function credentialResolver(sources: CredentialSources): CredentialResolver {
  const { env } = sources;
  const readFile = sources.readFile ?? defaultReadFile;
  const cache = new Map<string, Credential | undefined>();
  const set = (v: string | undefined): v is string => v !== undefined && v !== '';

  const explicit: Credential | undefined = sources.explicit
    ? { ...sources.explicit, source: '--username' }
    : set(env.TAGTRAIL_REGISTRY_USER) && set(env.TAGTRAIL_REGISTRY_PASSWORD)
      ? { username: env.TAGTRAIL_REGISTRY_USER, password: env.TAGTRAIL_REGISTRY_PASSWORD, source: 'TAGTRAIL_REGISTRY_USER' }
      : undefined;
  // Checked up front, so a command that would send them where they do not belong stops before any request.
  const explicitHosts = explicit ? explicitCredentialHosts(sources.registries, parseRegistryHosts(env.TAGTRAIL_REGISTRY_HOSTS, 'TAGTRAIL_REGISTRY_HOSTS'), explicit.source) : new Set<string>();

  const resolve = (registry: string): Credential | undefined => {
    if (explicit && explicitHosts.has(normalizeAuthKey(registry))) return explicit;
    if (set(env.CI_REGISTRY) && set(env.CI_REGISTRY_USER) && set(env.CI_REGISTRY_PASSWORD) && normalizeAuthKey(env.CI_REGISTRY) === normalizeAuthKey(registry)) {
      return { username: env.CI_REGISTRY_USER, password: env.CI_REGISTRY_PASSWORD, source: 'CI_REGISTRY_USER' };
    }
    if (set(env.DOCKER_AUTH_CONFIG)) {
      const c = fromDockerConfig(env.DOCKER_AUTH_CONFIG, registry, 'DOCKER_AUTH_CONFIG');
      if (c) return c;
    }
    const dir = set(env.DOCKER_CONFIG) ? env.DOCKER_CONFIG : set(env.HOME) ? join(env.HOME, '.docker') : undefined;
    if (dir) {
      const path = join(dir, 'config.json');
      const text = readFile(path);
      if (text !== undefined) return fromDockerConfig(text, registry, set(env.DOCKER_CONFIG) ? '$DOCKER_CONFIG/config.json' : '~/.docker/config.json');
    }
    return undefined;
  };

  return (registry) => {
    const key = normalizeAuthKey(registry);
    if (!cache.has(key)) cache.set(key, resolve(registry));
    return cache.get(key);
  };
}
