// Image references, parsed by the grammar of the distribution project's reference package.
// Pure: no I/O, no environment.
import { InvalidInputError } from '../errors.js';

export const DOCKER_HUB = 'index.docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

export interface Reference {
  /** host[:port], e.g. registry.gitlab.com or 127.0.0.1:5000. Docker Hub is index.docker.io. */
  readonly registry: string;
  /** path/name, e.g. group/project/app; Docker Hub official images get library/. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]{1,5}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const MAX_NAME_LENGTH = 255;

function invalid(input: string, why: string): InvalidInputError {
  return new InvalidInputError('INVALID_REFERENCE', `invalid image reference ${JSON.stringify(truncate(input))}: ${why}`, {
    hint: 'write it as host[:port]/path/name[:tag][@sha256:<64 hex>], e.g. registry.gitlab.com/group/app:1.0',
  });
}

function truncate(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

export function isValidDigest(s: string): boolean {
  return DIGEST.test(s);
}

export function isValidTag(s: string): boolean {
  return TAG.test(s);
}

/** Validates host[:port] or [ipv6]:port. */
export function isValidRegistryHost(host: string): boolean {
  let name = host;
  let port: string | undefined;
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    if (close < 0) return false;
    const inner = name.slice(1, close);
    if (!/^[0-9a-fA-F:.]+$/.test(inner) || !inner.includes(':')) return false;
    const rest = name.slice(close + 1);
    if (rest === '') return true;
    if (!rest.startsWith(':')) return false;
    return PORT.test(rest.slice(1)) && Number(rest.slice(1)) <= 65535;
  }
  const colon = name.lastIndexOf(':');
  if (colon >= 0) {
    port = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (!PORT.test(port) || Number(port) > 65535) return false;
  }
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

/**
 * Parses host[:port]/path/name[:tag][@digest] and Docker Hub short names.
 * A reference with neither tag nor digest gets the tag "latest".
 */
export function parseReference(input: string): Reference {
  if (typeof input !== 'string' || input.length === 0) throw invalid(String(input), 'it is empty');
  if (input.length > 4096) throw invalid(input, 'it is too long');
  if (/\s/.test(input)) throw invalid(input, 'it contains white space');
  if (input.includes('://')) throw invalid(input, 'leave out the scheme (http:// or https://)');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(input, `the digest ${JSON.stringify(truncate(digest))} is not sha256:<64 lowercase hex>`);
  }

  // A tag follows the last colon, if that colon comes after the last slash (otherwise it is a port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) {
      throw invalid(input, `the tag ${JSON.stringify(truncate(tag))} is not valid (letters, digits, _ . -, at most 128, not starting with . or -)`);
    }
  }

  if (rest.length === 0) throw invalid(input, 'the repository name is missing');
  const parts = rest.split('/');
  let registry: string;
  let pathParts: string[];
  const first = parts[0] as string;
  const looksLikeHost = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase() || first.startsWith('['));
  if (looksLikeHost) {
    if (!isValidRegistryHost(first)) throw invalid(input, `the registry host ${JSON.stringify(truncate(first))} is not a valid host[:port]`);
    registry = first;
    pathParts = parts.slice(1);
  } else {
    registry = DOCKER_HUB;
    pathParts = parts;
  }
  if (DOCKER_HUB_ALIASES.has(registry.toLowerCase())) {
    registry = DOCKER_HUB;
    if (pathParts.length === 1) pathParts = ['library', ...pathParts];
  }
  for (const p of pathParts) {
    if (p === '') throw invalid(input, 'the repository path has an empty component');
    if (!PATH_COMPONENT.test(p)) {
      throw invalid(input, `the path component ${JSON.stringify(truncate(p))} must be lowercase letters and digits, separated by . _ __ or -`);
    }
  }
  const repository = pathParts.join('/');
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) throw invalid(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** Validates a repository path on its own (as found in webhook events and the catalog). */
export function isValidRepository(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  return name.split('/').every((p) => PATH_COMPONENT.test(p));
}

/** host/repo[:tag][@digest] */
export function formatReference(ref: Reference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** What the registry's manifest endpoint takes: the digest when pinned, else the tag. */
export function manifestReference(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

export function withDigest(ref: Reference, digest: string): Reference {
  return { registry: ref.registry, repository: ref.repository, digest };
}

/** The host name of a host[:port], without the port or IPv6 brackets, lowercased. */
export function hostOnly(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']')).toLowerCase();
  const colon = registry.lastIndexOf(':');
  return (colon >= 0 ? registry.slice(0, colon) : registry).toLowerCase();
}

/** True for localhost, 127.0.0.0/8 and ::1, which crane also reaches over plain http. */
export function isLoopbackHost(registry: string): boolean {
  const h = hostOnly(registry);
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * https, except plain http for loopback hosts and for hosts named insecure. A registry the user
 * wrote with https:// (`httpsRegistries`, exact host[:port]) is https even on loopback. An
 * insecure entry with a port matches only that host:port; one without a port matches the host
 * on any port.
 */
export function registryScheme(registry: string, insecureRegistries: readonly string[] = [], httpsRegistries: readonly string[] = []): 'http' | 'https' {
  const reg = registry.toLowerCase();
  if (httpsRegistries.some((h) => h.toLowerCase() === reg)) return 'https';
  if (isLoopbackHost(registry)) return 'http';
  for (const entry of insecureRegistries) {
    const e = entry.toLowerCase().replace(/^https?:\/\//, '').replace(/\/+$/, '');
    if (e === reg) return 'http';
    if (!/:\d+$/.test(e) || e.endsWith(']')) {
      if (hostOnly(e) === hostOnly(reg)) return 'http';
    }
  }
  return 'https';
}

export function registryBaseUrl(registry: string, insecureRegistries: readonly string[] = [], httpsRegistries: readonly string[] = []): string {
  const host = registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
  return `${registryScheme(registry, insecureRegistries, httpsRegistries)}://${host}`;
}
