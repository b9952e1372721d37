// What `sync` and `serve` share: the registry URL, the catalog database, and flags that may also
// come from the environment (a flag wins over its variable).
import { UsageError } from '../errors.js';
import { isLoopbackHost, isValidRegistryHost } from '../oci/reference.js';
import type { Runtime } from '../runtime.js';

export interface RegistryTarget {
  /** host[:port], as image references name it. */
  host: string;
  /** True when the URL asked for plain http (treated like --insecure-registry HOST). */
  insecure: boolean;
  /** True when the URL asked for https: https even on loopback. */
  https: boolean;
}

/** https://host[:port] (https, on loopback too), http://host[:port] (plain http) or host[:port] (https; http on loopback). */
export function parseRegistryUrl(value: string, what = '--registry'): RegistryTarget {
  let rest = value.trim();
  let insecure = false;
  let https = false;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (scheme) {
    const s = scheme[1]?.toLowerCase();
    if (s !== 'http' && s !== 'https') throw new UsageError(`${what}: the scheme ${s} is not http or https`);
    insecure = s === 'http';
    https = s === 'https';
    rest = rest.slice(scheme[0].length);
  }
  rest = rest.replace(/\/+$/, '');
  if (rest.includes('/') || rest.includes('@') || rest.includes('?')) {
    throw new UsageError(`${what}: give the registry as URL or host[:port] without a path or credentials`, {
      hint: 'e.g. --registry https://registry.example.com or --registry 127.0.0.1:5000; credentials come as in annotate',
    });
  }
  if (!isValidRegistryHost(rest)) throw new UsageError(`${what}: ${JSON.stringify(rest.slice(0, 100))} is not a host[:port]`);
  return { host: rest, insecure: insecure && !isLoopbackHost(rest), https };
}

/** The flag, else the environment variable, else undefined. An empty variable counts as unset. */
export function fromEnv(rt: Runtime, flag: string | undefined, variable: string): string | undefined {
  if (flag !== undefined) return flag;
  const v = rt.env[variable];
  return v === undefined || v === '' ? undefined : v;
}

export function requireRegistry(rt: Runtime, flag: string | undefined): RegistryTarget {
  const value = fromEnv(rt, flag, 'TAGTRAIL_REGISTRY');
  if (value === undefined) throw new UsageError('no registry: pass --registry URL or set TAGTRAIL_REGISTRY', { hint: 'e.g. --registry https://registry.example.com' });
  return parseRegistryUrl(value);
}

export function positiveInt(value: string | undefined, what: string, fallback: number, min = 1, max = 1_000_000): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) throw new UsageError(`${what} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value.slice(0, 40))}`);
  return Number(value);
}

/**
 * A boolean flag, else its variable (1/true/yes or 0/false/no), else false. A flag can only turn
 * the setting on, as commander gives no --no- form for these.
 */
export function booleanFromEnv(rt: Pick<Runtime, 'env'>, flag: boolean | undefined, variable: string, flagName: string): boolean {
  if (flag === true) return true;
  const v = rt.env[variable];
  if (v === undefined || v === '') return false;
  const t = v.trim().toLowerCase();
  if (t === '1' || t === 'true' || t === 'yes') return true;
  if (t === '0' || t === 'false' || t === 'no') return false;
  throw new UsageError(`${variable}=${JSON.stringify(v.slice(0, 40))} is not 1 or 0`, { hint: `set ${variable}=1 for ${flagName}, or unset it` });
}

/** Comma-separated entries of a variable, blanks dropped. */
export function listFromEnv(rt: Pick<Runtime, 'env'>, variable: string): string[] {
  return (rt.env[variable] ?? '').split(',').map((e) => e.trim()).filter((e) => e !== '');
}

/**
 * --read-configs, else TAGTRAIL_READ_CONFIGS: read every new image config once for builder
 * evidence, not only the configs of images without build annotations.
 */
export function readConfigsFlag(rt: Runtime, flag: boolean | undefined): boolean {
  return booleanFromEnv(rt, flag, 'TAGTRAIL_READ_CONFIGS', '--read-configs');
}

/** --concurrency, else TAGTRAIL_CONCURRENCY, else 8: registry requests in flight at most. */
export function concurrencySetting(rt: Runtime, flag: string | undefined): number {
  return positiveInt(fromEnv(rt, flag, 'TAGTRAIL_CONCURRENCY'), '--concurrency', 8, 1, 64);
}

/** The registry flags with the scheme the --registry URL asked for (https:// or http://). */
export function targetFlags<F extends { insecureRegistry?: string[]; httpsRegistry?: string[] }>(flags: F, target: RegistryTarget): F {
  return {
    ...flags,
    insecureRegistry: [...(flags.insecureRegistry ?? []), ...(target.insecure ? [target.host] : [])],
    httpsRegistry: [...(flags.httpsRegistry ?? []), ...(target.https ? [target.host] : [])],
  };
}
