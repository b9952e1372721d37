// Terminal output is inert. An image in the real registry carries annotations with an OSC 52
// clipboard write, a carriage return and line break that forge a "commit:" line, a C1 CSI and a
// DEL; the registry (through the fault proxy) answers an error whose message holds the same.
// Whatever a command prints, on stdout and stderr, holds no control character but the line
// breaks and tabs of its own layout, and JSON output still parses to the very same values.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useFaultProxy, useRegistry, useTempDir } from '../helpers/fixtures.js';
import { makeImage, pushImage } from '../helpers/images.js';

const OSC52 = '\u001b]52;c;ZWNobyBwd25lZA==\u0007';
const JOB = `build${OSC52}`;
const FORGED = 'main\r\n  commit:        forged';
const C1 = 'red\u009b31m\u007f';
// Control characters other than \n and \t: C0, DEL, C1.
// eslint-disable-next-line no-control-regex
const LIVE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

const registry = useRegistry();
const proxy = useFaultProxy(() => ({ upstream: registry().url }));
const work = useTempDir('inert-output');

beforeAll(async () => {
  const image = await makeImage(join(work(), 'img'), {
    tag: 'v1',
    manifestAnnotations: {
      'com.gitlab.ci.pipeline_id': '9001',
      'com.gitlab.ci.job_name': JOB,
      'com.gitlab.ci.commit_ref_name': FORGED,
      'com.example.colour': C1,
    },
  });
  await pushImage(image, `${registry().host}/hostile/app:v1`);
});

function expectInert(r: { stdout: string; stderr: string }): void {
  expect(r.stdout).not.toMatch(LIVE);
  expect(r.stderr).not.toMatch(LIVE);
  // The forged line never starts a line of its own.
  expect(`${r.stdout}\n${r.stderr}`.split('\n').some((l) => /^\s*commit:\s+forged/.test(l))).toBe(false);
}

describe('terminal output is inert', () => {
  it('show (text): annotation values are escaped, not obeyed', async () => {
    const r = await runCli(['show', `${proxy().host}/hostile/app:v1`]);
    expect(r.code, r.stderr).toBe(0);
    expectInert(r);
    expect(r.stdout).toContain('build\\u001b]52;c;ZWNobyBwd25lZA==\\u0007');
    expect(r.stdout).toContain('main\\r\\n  commit:        forged');
    expect(r.stdout).toContain('red\\u009b31m\\u007f');
  });

  it('show (json): still JSON, with the very same values', async () => {
    const r = await runCli(['show', `${proxy().host}/hostile/app:v1`, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expectInert(r);
    const d = JSON.parse(r.stdout) as { annotations: Record<string, string> };
    expect(d.annotations['com.gitlab.ci.job_name']).toBe(JOB);
    expect(d.annotations['com.gitlab.ci.commit_ref_name']).toBe(FORGED);
    expect(d.annotations['com.example.colour']).toBe(C1);
  });

  it('annotate --dry-run: the diff of hostile values is escaped', async () => {
    const r = await runCli(['annotate', `${proxy().host}/hostile/app:v1`, '--no-ci', '-a', 'com.gitlab.ci.job_name=clean', '-a', 'com.example.colour=blue', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expectInert(r);
    expect(r.stdout).toContain('\\u009b31m');
  });

  it('a registry error message with control characters reaches stderr escaped', async () => {
    proxy().clearRules();
    const message = `manifest unknown${OSC52}\r\n  commit: forged \u009b2J`;
    proxy().addRule({ method: 'GET', path: /\/manifests\/v1$/, fault: { kind: 'status', status: 400, body: JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message }] }) } });
    try {
      for (const output of ['text', 'json']) {
        const r = await runCli(['show', `${proxy().host}/hostile/app:v1`, '-o', output]);
        expect(r.code).toBe(1);
        expectInert(r);
        expect(r.stderr).toContain('manifest unknown\\u001b]52;c;');
        expect(r.stderr).toContain('\\u009b2J');
      }
    } finally {
      proxy().clearRules();
    }
  });
});
