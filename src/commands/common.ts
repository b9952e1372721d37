// What the registry-facing commands share: turning flags and environment into a client.
import { EXIT_CONFLICT, UsageError, exitCodeFor, formatError, isTagtrailError } from '../errors.js';
import { parseTrustedRealmHost } from '../oci/auth/binding.js';
import { type CredentialResolver, credentialResolver } from '../oci/auth/credentials.js';
import { type Reference, formatReference, parseReference } from '../oci/reference.js';
import { RegistryClient } from '../oci/registry.js';
import type { Runtime } from '../runtime.js';
import { VERSION } from '../version.js';
import { booleanFromEnv, listFromEnv } from './catalog-common.js';

export interface RegistryFlags {
  username?: string;
  passwordStdin?: boolean;
  insecureRegistry?: string[];
  /** Not a flag: registries the user wrote with https:// (image references, --registry URLs). */
  httpsRegistry?: string[];
  trustedRealmHost?: string[];
  debug?: boolean;
}

/**
 * Host names whose token realms may receive Basic credentials besides each registry's own:
 * --trusted-realm-host, TAGTRAIL_TRUSTED_REALM_HOSTS, the GitLab servers the command is configured
 * with (serve's --gitlab-url), and in a GitLab CI job the job's own server ($CI_SERVER_URL), where
 * GitLab serves the /jwt/auth realm of its registry.
 */
function trustedRealmHosts(rt: Runtime, flags: RegistryFlags, gitlabUrls: readonly string[]): string[] {
  const fromEnv = listFromEnv(rt, 'TAGTRAIL_TRUSTED_REALM_HOSTS');
  const hosts = [
    ...(flags.trustedRealmHost ?? []).map((h) => parseTrustedRealmHost(h)),
    ...fromEnv.map((h) => parseTrustedRealmHost(h, 'TAGTRAIL_TRUSTED_REALM_HOSTS entry')),
    ...gitlabUrls.map((u) => parseTrustedRealmHost(u, '--gitlab-url')),
  ];
  const ciServer = rt.env.CI_SERVER_URL;
  if (ciServer) {
    try {
      hosts.push(parseTrustedRealmHost(ciServer, 'CI_SERVER_URL'));
    } catch {
      // Not a URL: the runner's business; it only means no GitLab host is trusted from it.
    }
  }
  return [...new Set(hosts)];
}

/**
 * A registry client for a command working on `registries` (host[:port]): explicit credentials
 * are bound to those. `gitlabUrls`: the GitLab servers the command is configured with.
 * `fallback`: credentials for a registry none of the usual sources has any for (the GitLab token
 * of discovery through GitLab's API). Requests go through `rt.http` when the runtime has it (the
 * process's node:http client: it starts quicker than fetch, and keeps a connection open after a
 * HEAD, where undici closes it), else through `rt.fetch`, as tests that inject fetch want.
 */
export async function registryClient(
  rt: Runtime,
  flags: RegistryFlags,
  registries: readonly string[],
  gitlabUrls: readonly string[] = [],
  fallback?: CredentialResolver,
): Promise<RegistryClient> {
  let explicit: { username: string; password: string } | undefined;
  if (flags.passwordStdin && !flags.username) throw new UsageError('--password-stdin needs --username', { hint: 'pass --username USER as well' });
  if (flags.username !== undefined) {
    if (!flags.passwordStdin) {
      throw new UsageError('--username needs --password-stdin', { hint: 'pipe the password in: echo "$TOKEN" | tagtrail … --username USER --password-stdin' });
    }
    // Like docker login: the trailing newline of `echo` is not part of the password.
    const password = (await rt.readStdin()).replace(/\r?\n$/, '');
    if (password === '') throw new UsageError('--password-stdin read an empty password', { hint: 'pipe the password or token into standard input' });
    explicit = { username: flags.username, password };
  }
  return new RegistryClient({
    fetch: rt.fetch,
    ...(rt.http ? { http: rt.http } : {}),
    credentials: withFallback(credentialResolver({ env: rt.env, registries, ...(explicit ? { explicit } : {}) }), fallback),
    // TAGTRAIL_INSECURE_REGISTRY adds to --insecure-registry, as TAGTRAIL_TRUSTED_REALM_HOSTS adds to --trusted-realm-host.
    insecureRegistries: [...(flags.insecureRegistry ?? []), ...listFromEnv(rt, 'TAGTRAIL_INSECURE_REGISTRY')],
    httpsRegistries: flags.httpsRegistry ?? [],
    trustedRealmHosts: trustedRealmHosts(rt, flags, gitlabUrls),
    userAgent: `tagtrail/${VERSION}`,
    ...(booleanFromEnv(rt, flags.debug, 'TAGTRAIL_DEBUG', '--debug') ? { debug: (line: string) => rt.stderr.write(`debug: ${line}\n`) } : {}),
  });
}

function withFallback(first: CredentialResolver, fallback: CredentialResolver | undefined): CredentialResolver {
  return fallback ? (registry) => first(registry) ?? fallback(registry) : first;
}

interface ImageArguments {
  refs: Reference[];
  /** Registries named with https://: https even on loopback. */
  httpsRegistry: string[];
  /** Registries named with http://: plain http, as --insecure-registry. */
  insecureRegistry: string[];
}

/**
 * Image arguments, each optionally led by the registry's scheme: `https://127.0.0.1:5443/app:1`
 * reaches a loopback registry over https (loopback hosts are otherwise http), and
 * `http://registry.internal/app:1` reaches that host over plain http (as --insecure-registry).
 */
export function parseImageArguments(inputs: readonly string[]): ImageArguments {
  const result: ImageArguments = { refs: [], httpsRegistry: [], insecureRegistry: [] };
  for (const input of inputs) {
    const m = /^(https?):\/\//i.exec(input);
    const ref = parseReference(m ? input.slice(m[0].length) : input);
    result.refs.push(ref);
    if (!m) continue;
    const https = (m[1] as string).toLowerCase() === 'https';
    (https ? result.httpsRegistry : result.insecureRegistry).push(ref.registry);
    if ((https ? result.insecureRegistry : result.httpsRegistry).includes(ref.registry)) {
      throw new UsageError(`${ref.registry} is named with both http:// and https://`, { hint: 'use one scheme for a registry in one command' });
    }
  }
  return result;
}

/** The flags with the schemes named in image arguments added. */
export function withSchemes<F extends RegistryFlags>(flags: F, images: Pick<ImageArguments, 'httpsRegistry' | 'insecureRegistry'>): F {
  return { ...flags, insecureRegistry: [...(flags.insecureRegistry ?? []), ...images.insecureRegistry], httpsRegistry: [...(flags.httpsRegistry ?? []), ...images.httpsRegistry] };
}

/** Worst exit code wins; a conflict outranks other failures so a CI job can tell races apart. */
function worstExit(codes: readonly number[]): number {
  if (codes.includes(EXIT_CONFLICT)) return EXIT_CONFLICT;
  return codes.find((c) => c !== 0) ?? 0;
}

/**
 * Runs fn for each image in turn. An error of ours is reported on stderr under the image's name
 * and becomes that image's exit code; the other images still run. Returns the results of those
 * that succeeded and the exit code for the whole run.
 */
export async function forEachImage<R>(rt: Runtime, refs: readonly Reference[], fn: (ref: Reference) => Promise<R>): Promise<{ results: R[]; exitCode: number }> {
  const results: R[] = [];
  const codes: number[] = [];
  for (const ref of refs) {
    try {
      results.push(await fn(ref));
      codes.push(0);
    } catch (err) {
      if (!isTagtrailError(err)) throw err;
      codes.push(exitCodeFor(err));
      rt.stderr.write(`${formatReference(ref)}: ${formatError(err)}\n`);
    }
  }
  return { results, exitCode: worstExit(codes) };
}

/** --output json: one object for one image, an array for several. */
export function jsonOutput<R>(results: readonly R[], images: number, toJson: (r: R) => Record<string, unknown>): string {
  const body = results.length === 1 && images === 1 ? toJson(results[0] as R) : results.map(toJson);
  return JSON.stringify(body, null, 2);
}
