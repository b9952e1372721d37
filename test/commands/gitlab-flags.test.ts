// The GitLab flags of serve and annotate/attach are checked before anything starts or is written.
import { describe, expect, it } from 'vitest';
import { gitlabEnv, runCli } from '../helpers/cli.js';

describe('serve --gitlab-webhook-secret and --public-url', () => {
  it('refuses a GitLab webhook secret under 16 characters', async () => {
    const r = await runCli(['serve'], { env: { TAGTRAIL_REGISTRY: '127.0.0.1:1', TAGTRAIL_GITLAB_WEBHOOK_SECRET: 'short-secret' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('at least 16 characters');
    expect(r.stderr).not.toContain('short-secret');
  });

  it('refuses a public URL that is not an http(s) origin, and GitLab events without a registry', async () => {
    const bad = await runCli(['serve', '--public-url', 'ftp://tagtrail.example.com'], { env: { TAGTRAIL_REGISTRY: '127.0.0.1:1' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--public-url');
    // One parse for sign-in, the Host check and the build reports' audience: an origin, no path.
    const withPath = await runCli(['serve', '--public-url', 'https://tagtrail.example.com/tagtrail'], { env: { TAGTRAIL_REGISTRY: '127.0.0.1:1' } });
    expect(withPath.code).toBe(2);
    expect(withPath.stderr).toContain('--public-url');
    const noRegistry = await runCli(['serve'], { env: { TAGTRAIL_GITLAB_WEBHOOK_SECRET: 'gitlab-webhook-secret-0123456789' } });
    expect(noRegistry.code).toBe(2);
    expect(noRegistry.stderr).toContain('--registry');
    expect(noRegistry.stderr).not.toContain('gitlab-webhook-secret-0123456789');
  });
});

describe('annotate and attach --report', () => {
  it.each(['annotate', 'attach'])('%s refuses a plain-http report URL off loopback before any request', async (command) => {
    let requests = 0;
    const counting: typeof fetch = (input, init) => {
      requests++;
      return fetch(input, init);
    };
    const r = await runCli([command, '127.0.0.1:1/acme/app:v1', '--report', 'http://tagtrail.example.com'], { env: { ...gitlabEnv(), TAGTRAIL_ID_TOKEN: 'id-token-secret' }, fetch: counting });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('only https');
    expect(r.stderr).not.toContain('id-token-secret');
    expect(requests).toBe(0);
  });
});
