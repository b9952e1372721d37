// Every serve and sync setting can come from a TAGTRAIL_* variable (a container is configured by
// its environment): the flag wins, else the variable, else the default.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useRegistry, useTempDir } from '../helpers/fixtures.js';
import { seedRegistry } from '../catalog/seed.js';

describe('settings from the environment', () => {
  const registry = useRegistry();
  const dir = useTempDir('env-settings');

  beforeAll(async () => {
    await seedRegistry(registry().host, 'envone');
    await seedRegistry(registry().host, 'envtwo');
  }, 60_000);

  it('TAGTRAIL_CONCURRENCY is checked as --concurrency is, for sync and serve; the flag wins', async () => {
    for (const command of ['sync', 'serve']) {
      const res = await runCli([command, '--registry', registry().host, '--db', `sqlite:${join(dir(), 'c.db')}`], { env: { TAGTRAIL_CONCURRENCY: '0' } });
      expect(res.code, command).toBe(2);
      expect(res.stderr).toContain('--concurrency must be a whole number from 1 to 64');
    }
    const flagWins = await runCli(['sync', '--registry', registry().host, '--repository', 'envone', '--concurrency', '2', '--db', `sqlite:${join(dir(), 'c.db')}`], { env: { TAGTRAIL_CONCURRENCY: '0' } });
    expect(flagWins.code).toBe(0);
  });

  it('TAGTRAIL_REPOSITORY scopes a sync as --repository does', async () => {
    const res = await runCli(['sync', '-o', 'json'], { env: { TAGTRAIL_REGISTRY: registry().host, TAGTRAIL_DB: `sqlite:${join(dir(), 'r.db')}`, TAGTRAIL_REPOSITORY: 'envtwo' } });
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ prefix: 'envtwo', repositories: 4 });
  });

  it('TAGTRAIL_DEBUG=1 logs requests as --debug does, and TAGTRAIL_INSECURE_REGISTRY adds plain-http hosts', async () => {
    const res = await runCli(['show', 'registry.invalid/group/app:v1'], { env: { TAGTRAIL_DEBUG: '1', TAGTRAIL_INSECURE_REGISTRY: 'other.invalid, registry.invalid' } });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('debug: --> GET http://registry.invalid/v2/');
    const bad = await runCli(['show', 'registry.invalid/group/app:v1'], { env: { TAGTRAIL_DEBUG: 'maybe' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('TAGTRAIL_DEBUG');
  });
});
