// vitest wiring for the helpers: start in beforeAll, stop in afterAll, even when tests fail.
// The other helper modules stay free of vitest so benchmarks can use them too.
import { afterAll, beforeAll } from 'vitest';
import { makeTempDir, removeTempDir } from './cleanup.js';
import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from './fault-proxy.js';
import { startGitlab, type GitlabStandIn, type GitlabStandInOptions } from './gitlab/server.js';
import { startNotificationSink, startRegistry, type NotificationSink, type RegistryOptions, type TestRegistry } from './registry.js';
import { startTokenIssuer, type TokenIssuer, type TokenIssuerOptions } from './token-issuer.js';

type Lazy<T> = T | (() => T);

function resolveLazy<T>(value: Lazy<T>): T {
  return typeof value === 'function' ? (value as () => T)() : value;
}

/**
 * Starts something for the enclosing describe (or file) and returns a getter for it. Options
 * may be a function, read in beforeAll, so they can use fixtures registered before this one:
 *
 *   const issuer = useTokenIssuer({ users: { ... } });
 *   const registry = useRegistry(() => ({ auth: { tokenIssuer: issuer() } }));
 */
function useFixture<T extends { stop(): Promise<void> }>(name: string, start: () => Promise<T>): () => T {
  let value: T | undefined;
  beforeAll(async () => {
    value = await start();
  });
  afterAll(async () => {
    await value?.stop();
    value = undefined;
  });
  return () => {
    if (value === undefined) throw new Error(`${name} is not running: use it inside a test or a hook after beforeAll`);
    return value;
  };
}

export function useTokenIssuer(options: Lazy<TokenIssuerOptions> = {}): () => TokenIssuer {
  return useFixture('token issuer', () => startTokenIssuer(resolveLazy(options)));
}

/** The GitLab stand-in (helpers/gitlab/); a registry takes it as its tokenIssuer. */
export function useGitlab(options: Lazy<GitlabStandInOptions> = {}): () => GitlabStandIn {
  return useFixture('GitLab stand-in', () => startGitlab(resolveLazy(options)));
}

export function useRegistry(options: Lazy<RegistryOptions> = {}): () => TestRegistry {
  return useFixture('registry', () => startRegistry(resolveLazy(options)));
}

export function useFaultProxy(options: Lazy<FaultProxyOptions>): () => FaultProxy {
  return useFixture('fault proxy', () => startFaultProxy(resolveLazy(options)));
}

export function useNotificationSink(): () => NotificationSink {
  return useFixture('notification sink', () => startNotificationSink());
}

/** A temp dir for the enclosing describe, removed afterwards. */
export function useTempDir(prefix = 'test'): () => string {
  const fixture = useFixture('temp dir', async () => {
    const path = await makeTempDir(prefix);
    return { path, stop: () => removeTempDir(path) };
  });
  return () => fixture().path;
}
