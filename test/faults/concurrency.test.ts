// Concurrent writers on one tag, against a real registry: two annotate runs at once, and an
// annotate racing a fresh push. Whatever the interleaving, the outcome must be clean: every run
// exits 0 or 3; the tag ends on a manifest that carries one writer's complete result and pulls
// whole; and a run that exits 0 really wrote what it reported (its `after` digest exists).
//
// Registries have no conditional PUT. annotate re-reads the tag (HEAD) just before its PUT and
// exits 3 if it moved, which narrows the window to one round trip but cannot close it: a write
// that lands between that HEAD and the PUT is overwritten. The last test shows that case and
// what still holds in it (docs/reliability.md).
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { useFaultProxy, useRegistry, useTempDir } from '../helpers/fixtures.js';
import { curlManifest, makeImage, makeIndex, pushImage, skopeoPullToDir, type ImageInfo } from '../helpers/images.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const ACCEPT = [OCI_INDEX, OCI_MANIFEST];

const registry = useRegistry();
const proxy = useFaultProxy(() => ({ upstream: registry().url }));
const work = useTempDir('concurrency');

interface Run {
  name: string;
  code: number;
  stderr: string;
  result?: { changed: boolean; before: string; after: string; annotations: Record<string, string> };
  set: Record<string, string>;
}

/** One annotate run with its own annotation set; --no-ci so the set is exactly what we pass. */
async function annotate(host: string, repo: string, tag: string, name: string): Promise<Run> {
  const set = { 'com.example.run': name, [`com.example.by-${name}`]: 'yes' };
  const args = ['annotate', `${host}/${repo}:${tag}`, '--no-ci', '-o', 'json', ...Object.entries(set).flatMap(([k, v]) => ['-a', `${k}=${v}`])];
  const r = await runCli(args, { env: {} });
  return { name, code: r.code, stderr: r.stderr, set, ...(r.code === 0 ? { result: JSON.parse(r.stdout) as Run['result'] } : {}) };
}

async function manifest(repo: string, reference: string): Promise<{ status: number; digest?: string; json: { annotations?: Record<string, string>; mediaType?: string; config?: { digest: string } } }> {
  const r = await curlManifest(`${registry().url}/v2/${repo}/manifests/${reference}`, { accept: ACCEPT });
  return { status: r.status, ...(r.digest ? { digest: r.digest } : {}), json: r.status === 200 ? JSON.parse(r.body.toString('utf8')) : {} };
}

async function exists(repo: string, digest: string): Promise<boolean> {
  return (await curlManifest(`${registry().url}/v2/${repo}/manifests/${digest}`, { accept: ACCEPT, method: 'HEAD' })).status === 200;
}

async function pullsWhole(ref: string, image: Pick<ImageInfo, 'configDigest' | 'layers'>): Promise<void> {
  const pulled = await skopeoPullToDir(ref, await mkdtemp(join(work(), 'pull-')));
  expect(pulled.configDigest).toBe(image.configDigest);
  expect(pulled.layers).toEqual(image.layers.map((l) => l.digest));
}

/** The invariants of two annotate runs on one tag, whatever the interleaving. */
async function expectCleanOutcome(repo: string, tag: string, runs: Run[], original: string): Promise<Run> {
  for (const r of runs) expect([0, 3], `${r.name}: ${r.stderr}`).toContain(r.code);
  const winners = runs.filter((r) => r.code === 0);
  expect(winners.length).toBeGreaterThan(0);
  // A run that exited 0 wrote what it reported.
  for (const w of winners) expect(await exists(repo, w.result!.after)).toBe(true);
  // A loser exits 3 naming the digest it read and the one it found, or, when its race check
  // caught the other's PUT rewriting the tag (distribution answers that HEAD with 500), saying
  // that the tag was being written and nothing was changed.
  for (const l of runs.filter((r) => r.code === 3)) expect(l.stderr).toMatch(/moved while annotating|was replaced right after annotating|is being written by another client right now.*nothing was changed/);
  const final = await manifest(repo, tag);
  expect(final.status).toBe(200);
  const owner = winners.find((w) => w.result!.after === final.digest);
  expect(owner, `the tag points at ${final.digest}, which no winner reported`).toBeDefined();
  expect(final.digest).not.toBe(original);
  // One run's complete set; the other run's keys only if that run's result was the base it read.
  const a = final.json.annotations ?? {};
  for (const [k, v] of Object.entries(owner!.set)) expect(a[k]).toBe(v);
  // No write lost silently: when both exit 0, the tag's owner annotated the other's result.
  for (const w of winners) if (w !== owner) expect(a[`com.example.by-${w.name}`], `${w.name} exited 0 but its write is not on the tag`).toBe('yes');
  return owner!;
}

describe('two annotate runs on the same tag', () => {
  it('held apart: the first writes, the second finds the tag moved at its race check and exits 3', async () => {
    const repo = 'race/held';
    const image = await makeImage(join(work(), 'held'), { tag: 'v1' });
    const original = await pushImage(image, `${registry().host}/${repo}:v1`);
    // A's race-check HEAD (its first HEAD of the tag) waits while B runs from start to end.
    proxy().clearRules();
    const hold = proxy().addRule({ method: 'HEAD', path: /\/manifests\/v1$/, nth: 1, fault: { kind: 'latency', ms: 4000 } });
    const a = annotate(proxy().host, repo, 'v1', 'a');
    for (let i = 0; i < 200 && hold.applied() === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(hold.applied()).toBe(1);
    const b = await annotate(registry().host, repo, 'v1', 'b');
    const runs = [await a, b];
    expect(runs.map((r) => r.code)).toEqual([3, 0]);
    const owner = await expectCleanOutcome(repo, 'v1', runs, original);
    expect(owner.name).toBe('b');
    expect((await manifest(repo, 'v1')).json.annotations?.['com.example.by-a']).toBeUndefined();
    await pullsWhole(`${registry().host}/${repo}:v1`, image);
    // Run again, the loser converges: it annotates B's result and keeps B's keys.
    const again = await annotate(registry().host, repo, 'v1', 'a');
    expect(again.code).toBe(0);
    expect((await manifest(repo, 'v1')).json.annotations).toMatchObject({ 'com.example.run': 'a', 'com.example.by-a': 'yes', 'com.example.by-b': 'yes' });
  });

  it('A\'s race check meets B\'s PUT rewriting the tag (HEAD answered 500): A exits 3 having changed nothing, B\'s result stays', async () => {
    const repo = 'race/being-written';
    const image = await makeImage(join(work(), 'being-written'), { tag: 'v1' });
    const original = await pushImage(image, `${registry().host}/${repo}:v1`);
    // distribution rewrites a tag's link file in place, so a HEAD landing during another client's
    // PUT of the tag is answered 500; the proxy answers A's race check that way.
    proxy().clearRules();
    const writing = proxy().addRule({ method: 'HEAD', path: /\/manifests\/v1$/, nth: 1, fault: { kind: 'status', status: 500 } });
    const a = await annotate(proxy().host, repo, 'v1', 'a');
    const b = await annotate(registry().host, repo, 'v1', 'b');
    expect(writing.applied()).toBe(1);
    expect([a.code, b.code]).toEqual([3, 0]);
    const owner = await expectCleanOutcome(repo, 'v1', [a, b], original);
    expect(owner.name).toBe('b');
    expect((await manifest(repo, 'v1')).json.annotations?.['com.example.by-a']).toBeUndefined();
  });

  it('B\'s race check passes before A writes, B writes after A: A finds its result replaced and exits 3', async () => {
    const repo = 'race/replaced';
    const image = await makeImage(join(work(), 'replaced'), { tag: 'v1' });
    const original = await pushImage(image, `${registry().host}/${repo}:v1`);
    const proxyB = await startFaultProxy({ upstream: registry().url });
    try {
      proxy().clearRules();
      // B's PUT of the tag waits 2 s after its race check; A's check after writing waits 4 s.
      const holdB = proxyB.addRule({ method: 'PUT', path: /\/manifests\/v1$/, nth: 1, fault: { kind: 'latency', ms: 2000 } });
      const holdA = proxy().addRule({ method: 'HEAD', path: /\/manifests\/v1$/, nth: 2, fault: { kind: 'latency', ms: 4000 } });
      const b = annotate(proxyB.host, repo, 'v1', 'b');
      for (let i = 0; i < 200 && holdB.applied() === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(holdB.applied()).toBe(1);
      const a = annotate(proxy().host, repo, 'v1', 'a');
      const runs = await Promise.all([a, b]);
      expect(holdA.applied()).toBe(1);
      expect(runs.map((r) => r.code)).toEqual([3, 0]);
      expect(runs[0]!.stderr).toContain('was replaced right after annotating');
      const owner = await expectCleanOutcome(repo, 'v1', runs, original);
      expect(owner.name).toBe('b');
      await pullsWhole(`${registry().host}/${repo}:v1`, image);
    } finally {
      await proxyB.stop();
    }
  });

  it('started together, five rounds on an image and on an index: always one clean winner', async () => {
    proxy().clearRules();
    const outcomes: string[] = [];
    for (let round = 0; round < 5; round++) {
      const repo = `race/together-${round}`;
      const isIndex = round % 2 === 1;
      const dir = join(work(), `together-${round}`);
      const built = isIndex ? await makeIndex(dir, { tag: 'v1', attestations: true }) : await makeImage(dir, { tag: 'v1' });
      const original = await pushImage(built, `${registry().host}/${repo}:v1`);
      const runs = await Promise.all([annotate(registry().host, repo, 'v1', 'a'), annotate(registry().host, repo, 'v1', 'b')]);
      const owner = await expectCleanOutcome(repo, 'v1', runs, original);
      const final = await manifest(repo, 'v1');
      expect(final.json.mediaType).toBe(isIndex ? OCI_INDEX : OCI_MANIFEST);
      if (isIndex) {
        const idx = final.json as { manifests?: { digest: string }[] };
        for (const d of idx.manifests ?? []) expect(await exists(repo, d.digest)).toBe(true);
      }
      await pullsWhole(`${registry().host}/${repo}:v1`, 'images' in built ? built.images[0]! : built);
      const other = runs.find((r) => r !== owner)!;
      const both = other.code === 0 && final.json.annotations?.[`com.example.by-${other.name}`] === 'yes';
      outcomes.push(`${runs.map((r) => r.code).join('/')} owner ${owner.name}${both ? ' (re-annotated the other)' : ''}`);
    }
    console.log(`concurrent annotate rounds: ${outcomes.join('; ')}`);
  });

  it('the same annotation set twice at once (a retried CI job): both exit 0 or one exits 3, and the tag has the set', async () => {
    const repo = 'race/same';
    const image = await makeImage(join(work(), 'same'), { tag: 'v1' });
    const original = await pushImage(image, `${registry().host}/${repo}:v1`);
    const args = ['annotate', `${registry().host}/${repo}:v1`, '--no-ci', '-a', 'com.example.job=retry', '-o', 'json'];
    const runs = await Promise.all([runCli(args, { env: {} }), runCli(args, { env: {} })]);
    for (const r of runs) expect([0, 3]).toContain(r.code);
    const afters = runs.filter((r) => r.code === 0).map((r) => (JSON.parse(r.stdout) as { after: string }).after);
    // Same input, same bytes, same digest: whoever wrote, the result is the same manifest.
    expect(new Set(afters).size).toBe(1);
    const final = await manifest(repo, 'v1');
    expect(final.digest).toBe(afters[0]);
    expect(final.digest).not.toBe(original);
    expect(final.json.annotations?.['com.example.job']).toBe('retry');
  });
});

describe('annotate racing a fresh push of the tag', () => {
  it('started together, four rounds: the tag ends on the push or on a complete annotate result, never on a mix', async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 4; round++) {
      const repo = `race/push-${round}`;
      const old = await makeImage(join(work(), `push-old-${round}`), { tag: 'v1' });
      const fresh = await makeImage(join(work(), `push-new-${round}`), { tag: 'v1' });
      const oldDigest = await pushImage(old, `${registry().host}/${repo}:v1`);
      const [run, pushed] = await Promise.all([annotate(registry().host, repo, 'v1', 'a'), pushImage(fresh, `${registry().host}/${repo}:v1`)]);
      expect([0, 3], run.stderr).toContain(run.code);
      const final = await manifest(repo, 'v1');
      if (run.code === 0) expect(await exists(repo, run.result!.after)).toBe(true);
      if (final.digest === pushed) {
        outcomes.push(run.code === 0 ? 'push last' : 'annotate exit 3');
        await pullsWhole(`${registry().host}/${repo}:v1`, fresh);
      } else {
        // The annotate result is the tag: complete, on the image it read (the old or the fresh one).
        expect(run.code).toBe(0);
        expect(final.digest).toBe(run.result!.after);
        expect(final.json.annotations).toMatchObject(run.set);
        const base = run.result!.before === oldDigest ? old : fresh;
        expect([oldDigest, pushed]).toContain(run.result!.before);
        await pullsWhole(`${registry().host}/${repo}:v1`, base);
        // The fresh push is never gone from the registry, even when its tag moved on.
        expect(await exists(repo, pushed)).toBe(true);
        outcomes.push(base === fresh ? 'annotated the push' : 'annotate last (push untagged)');
      }
    }
    console.log(`annotate vs push rounds: ${outcomes.join('; ')}`);
  });

  it('the window: a push landing between the race check and the PUT is untagged, yet stays in the registry whole', async () => {
    const repo = 'race/window';
    const old = await makeImage(join(work(), 'window-old'), { tag: 'v1' });
    const fresh = await makeImage(join(work(), 'window-new'), { tag: 'v1' });
    const oldDigest = await pushImage(old, `${registry().host}/${repo}:v1`);
    // annotate's PUT of the tag waits; the push lands in that pause, after the race check passed.
    proxy().clearRules();
    const hold = proxy().addRule({ method: 'PUT', path: /\/manifests\/v1$/, nth: 1, fault: { kind: 'latency', ms: 4000 } });
    const pending = annotate(proxy().host, repo, 'v1', 'a');
    for (let i = 0; i < 200 && hold.applied() === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(hold.applied()).toBe(1);
    const pushed = await pushImage(fresh, `${registry().host}/${repo}:v1`);
    const run = await pending;
    // No conditional PUT: annotate cannot see the push, and the tag ends on its result.
    expect(run.code).toBe(0);
    expect(run.result!.before).toBe(oldDigest);
    expect((await manifest(repo, 'v1')).digest).toBe(run.result!.after);
    // What holds: the pushed manifest and its blobs are still there, whole, by digest.
    expect(await exists(repo, pushed)).toBe(true);
    await pullsWhole(`${registry().host}/${repo}@${pushed}`, fresh);
  });
});
