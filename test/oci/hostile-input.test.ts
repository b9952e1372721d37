// Manifests real tools leave in registries that tagtrail once misread: signed Docker schema 1,
// BuildKit builder references, nested indexes, artifacts with a subject and images with
// referrers, oversized indexes, and show's summary. Each case runs against a real registry and
// is read back with curl or skopeo. See docs/reliability.md, "Hostile input".
import { cp, mkdtemp } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { gitlabEnv, runCli } from '../helpers/cli.js';
import { useFaultProxy, useRegistry, useTempDir } from '../helpers/fixtures.js';
import { curlManifest, makeImage, makeIndex, pushImage, pushLayout, sha256, skopeoPullToDir } from '../helpers/images.js';
import { signedSchema1 } from '../helpers/schema1.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
const ACCEPT = [OCI_INDEX, OCI_MANIFEST, 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json'];
const REF_TYPE = 'vnd.docker.reference.type';
const REF_DIGEST = 'vnd.docker.reference.digest';
const env = gitlabEnv();

const projectRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const realImages = resolve(projectRoot, '../shared/real-images');

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}
type Json = Record<string, unknown> & { annotations?: Record<string, string>; manifests?: Desc[]; subject?: Desc };

async function read(url: string, repo: string, reference: string): Promise<{ status: number; digest?: string; json: Json; bytes: Buffer }> {
  const r = await curlManifest(`${url}/v2/${repo}/manifests/${reference}`, { accept: ACCEPT });
  return { status: r.status, digest: r.digest, json: r.status === 200 ? (JSON.parse(r.body.toString('utf8')) as Json) : {}, bytes: r.body };
}

async function put(url: string, repo: string, reference: string, body: Buffer, mediaType: string): Promise<void> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: new Uint8Array(body) });
  if (res.status !== 201) throw new Error(`PUT ${repo}:${reference} gave ${res.status}: ${await res.text()}`);
}

function indexOf(children: readonly Desc[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children }));
}

describe('a signed Docker schema 1 manifest', () => {
  const registry = useRegistry(() => ({ schema1: true }));
  const dir = useTempDir('schema1');

  async function pushSchema1(repo: string): Promise<string> {
    const image = await makeImage(join(dir(), repo.replace('/', '-')), { tag: 'base' });
    await pushImage(image, `${registry().host}/${repo}:base`);
    const s1 = signedSchema1(repo, 'v1', image.layers.map((l) => l.digest));
    await put(registry().url, repo, 'v1', s1.bytes, SCHEMA1_SIGNED);
    // What the registry serves is signed; its digest covers the payload without the signatures.
    const served = await curlManifest(`${registry().url}/v2/${repo}/manifests/v1`, { accept: [SCHEMA1_SIGNED] });
    expect(served.contentType).toBe(SCHEMA1_SIGNED);
    expect(served.digest).toBe(s1.digest);
    expect(sha256(served.body)).not.toBe(s1.digest);
    return s1.digest;
  }

  it('annotate, attach and show say schema 1 is not supported, exit 1, and write nothing', async () => {
    await pushSchema1('odd/s1');
    const image = `${registry().host}/odd/s1:v1`;
    registry().resetRequests();
    for (const args of [['annotate', image], ['attach', image], ['show', image]]) {
      const r = await runCli(args, { env });
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toContain('schema 1 is not supported');
      expect(r.stderr).not.toContain('proxy');
    }
    expect(registry().count({ method: 'PUT' }) + registry().count({ method: 'POST' })).toBe(0);
  });

  it('sync records it as unreadable once and does not fetch it again', async () => {
    const digest = await pushSchema1('odd/s1sync');
    const path = join(dir(), 'catalog.db');
    const sync = () => runCli(['sync', '--registry', registry().host, '--repository', 'odd', '--db', `sqlite:${path}`, '-o', 'json']);
    const gets = () => registry().count((r) => r.method === 'GET' && r.path === `/v2/odd/s1sync/manifests/${digest}`);
    registry().resetRequests();
    const first = await sync();
    expect(first.code, first.stderr).toBe(1);
    expect(gets()).toBe(1);
    const db = new Database(path, { readonly: true });
    try {
      const row = db.prepare('SELECT code, reason FROM unreadable_manifests WHERE digest = ?').get(digest) as { code: string; reason: string } | undefined;
      expect(row?.code).toBe('UNREADABLE_MANIFEST');
      expect(row?.reason).toContain('schema 1');
    } finally {
      db.close();
    }
    registry().resetRequests();
    const second = await sync();
    expect(second.code).toBe(1);
    expect(gets()).toBe(0);
  });
});

describe('BuildKit reference manifests (regclient testrepo v1)', () => {
  const registry = useRegistry();
  const dir = useTempDir('references');

  it('builder references are not annotated as platforms; their reference digest and subject follow the new child digests', async () => {
    if (!existsSync(join(realImages, 'regclient-testrepo', 'index.json'))) throw new Error(`the real images are missing: expected ${realImages}/regclient-testrepo beside the project`);
    const layout = join(dir(), 'testrepo');
    await cp(join(realImages, 'regclient-testrepo'), layout, { recursive: true });
    const pushed = await pushLayout(layout, `${registry().host}/real/testrepo:v1`, { tag: 'v1', all: true });
    const before = await read(registry().url, 'real/testrepo', 'v1');
    expect(before.digest).toBe(pushed);
    const refs = (before.json.manifests ?? []).filter((d) => d.annotations?.[REF_TYPE] === 'builder');
    expect(refs).toHaveLength(2);
    const hasSubject = await Promise.all(refs.map(async (d) => (await read(registry().url, 'real/testrepo', d.digest)).json.subject !== undefined));
    const withSubject = refs.filter((_, i) => hasSubject[i]).map((d) => d.digest);
    const withoutSubject = refs.filter((_, i) => !hasSubject[i]).map((d) => d.digest);
    expect([withSubject.length, withoutSubject.length]).toEqual([1, 1]);

    registry().resetRequests();
    const r = await runCli(['annotate', `${registry().host}/real/testrepo:v1`], { env });
    expect(r.code, r.stderr).toBe(0);
    const after = await read(registry().url, 'real/testrepo', 'v1');
    const list = after.json.manifests ?? [];
    const platforms = list.filter((d) => d.annotations?.[REF_TYPE] === undefined);
    expect(platforms.map((d) => `${d.platform?.os}/${d.platform?.architecture}`)).toEqual(['linux/amd64', 'linux/arm64']);
    for (const p of platforms) {
      const child = await read(registry().url, 'real/testrepo', p.digest);
      expect(child.status).toBe(200);
      expect(child.json.annotations?.['com.gitlab.ci.pipeline_id']).toBe(env.CI_PIPELINE_ID);
    }
    for (const d of list.filter((x) => x.annotations?.[REF_TYPE] === 'builder')) {
      const target = d.annotations?.[REF_DIGEST] ?? '';
      expect(platforms.map((p) => p.digest)).toContain(target);
      const m = await read(registry().url, 'real/testrepo', d.digest);
      expect(m.status).toBe(200);
      expect(m.bytes.byteLength).toBe(d.size);
      expect(m.json.annotations?.['com.gitlab.ci.pipeline_id']).toBeUndefined();
      // The one with a subject names the new arm64 manifest, with its size.
      if (m.json.subject) {
        expect(m.json.subject.digest).toBe(target);
        expect(m.json.subject.size).toBe(platforms.find((p) => p.digest === target)?.size);
        // Written after the manifest its subject names, and before the index.
        const order = registry().requests.filter((q) => q.method === 'PUT').map((q) => q.path.split('/').at(-1));
        expect(order.indexOf(target)).toBeLessThan(order.indexOf(d.digest));
        expect(order.indexOf(d.digest)).toBeLessThan(order.indexOf('v1'));
      }
    }
    // The reference without a subject keeps its bytes; the one with a subject was rewritten.
    const newDigests = list.map((d) => d.digest);
    expect(newDigests).toContain(withoutSubject[0]);
    expect(newDigests).not.toContain(withSubject[0]);
    // show lists the two platforms, not the references.
    const shown = await runCli(['show', `${registry().host}/real/testrepo:v1`, '-o', 'json']);
    expect((JSON.parse(shown.stdout) as { manifests: { platform: string }[] }).manifests.map((m) => m.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    const pulled = await skopeoPullToDir(`${registry().host}/real/testrepo:v1`, await mkdtemp(join(dir(), 'pull-')), undefined, { os: 'linux', architecture: 'arm64' });
    expect(pulled.layers.length).toBeGreaterThan(0);
  });
});

describe('nested indexes', () => {
  const registry = useRegistry();
  const dir = useTempDir('nested');

  async function inner(repo: string): Promise<{ digest: string; size: number }> {
    const index = await makeIndex(join(dir(), repo.replace('/', '-')), { tag: 'inner' });
    const digest = await pushImage(index, `${registry().host}/${repo}:inner`);
    return { digest, size: (await read(registry().url, repo, digest)).bytes.byteLength };
  }

  it('are annotated innermost first, and --dry-run lists them', async () => {
    const repo = 'nest/two';
    const child = await inner(repo);
    await put(registry().url, repo, 'v1', indexOf([{ mediaType: OCI_INDEX, ...child }]), OCI_INDEX);

    registry().resetRequests();
    const dry = await runCli(['annotate', '--dry-run', `${registry().host}/${repo}:v1`], { env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`manifests[0] index ${child.digest}`);
    expect(dry.stdout).toContain('manifests[0] > linux/amd64');
    expect(registry().count({ method: 'PUT' })).toBe(0);

    const r = await runCli(['annotate', `${registry().host}/${repo}:v1`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('including 1 nested index');
    const outer = await read(registry().url, repo, 'v1');
    const nested = outer.json.manifests?.[0];
    expect(nested?.digest).not.toBe(child.digest);
    const innerAfter = await read(registry().url, repo, nested?.digest ?? '');
    expect(innerAfter.status).toBe(200);
    expect(innerAfter.bytes.byteLength).toBe(nested?.size);
    expect(innerAfter.json.annotations?.['com.gitlab.ci.pipeline_id']).toBe(env.CI_PIPELINE_ID);
    for (const d of innerAfter.json.manifests ?? []) {
      const leaf = await read(registry().url, repo, d.digest);
      expect(leaf.status).toBe(200);
      if (d.annotations?.[REF_TYPE] === undefined) expect(leaf.json.annotations?.['com.gitlab.ci.pipeline_id']).toBe(env.CI_PIPELINE_ID);
    }
    await skopeoPullToDir(`${registry().host}/${repo}@${nested?.digest ?? ''}`, await mkdtemp(join(dir(), 'pull-')));
  });

  it('nested deeper than 4 levels are refused as unreadable, exit 1, before any write', async () => {
    const repo = 'nest/deep';
    let child = await inner(repo);
    for (let level = 0; level < 4; level++) {
      const bytes = indexOf([{ mediaType: OCI_INDEX, ...child }]);
      await put(registry().url, repo, `w${level}`, bytes, OCI_INDEX);
      child = { digest: sha256(bytes), size: bytes.byteLength };
    }
    registry().resetRequests();
    const r = await runCli(['annotate', `${registry().host}/${repo}:w3`], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nested 5 levels deep');
    expect(registry().count({ method: 'PUT' })).toBe(0);
  });
});

describe('manifests with a subject, and images with referrers', () => {
  const registry = useRegistry();
  const dir = useTempDir('subject');

  it('annotate refuses an artifact with a subject (exit 2) unless --force', async () => {
    const image = await makeImage(join(dir(), 'a'), { tag: 'v1' });
    await pushImage(image, `${registry().host}/subj/app:v1`);
    const attached = await runCli(['attach', `${registry().host}/subj/app:v1`, '-o', 'json'], { env });
    expect(attached.code, attached.stderr).toBe(0);
    const referrer = (JSON.parse(attached.stdout) as { referrer: string }).referrer;

    registry().resetRequests();
    const refused = await runCli(['annotate', `${registry().host}/subj/app@${referrer}`], { env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('carries a subject');
    expect(refused.stderr).toContain('--force');
    expect(registry().count({ method: 'PUT' })).toBe(0);

    const forced = await runCli(['annotate', '--force', `${registry().host}/subj/app@${referrer}`, '-o', 'json'], { env });
    expect(forced.code, forced.stderr).toBe(0);
    const after = (JSON.parse(forced.stdout) as { after: string }).after;
    expect((await read(registry().url, 'subj/app', after)).json.subject?.digest).toBe(image.digest);
  });

  it('annotate warns, naming them, when the image has referrers or cosign tags, and points to attach', async () => {
    const image = await makeImage(join(dir(), 'b'), { tag: 'v1' });
    await pushImage(image, `${registry().host}/subj/signed:v1`);
    const attached = await runCli(['attach', `${registry().host}/subj/signed:v1`], { env });
    expect(attached.code, attached.stderr).toBe(0);
    const hex = image.digest.slice('sha256:'.length);
    // cosign keeps a signature under sha256-<hex>.sig: any manifest will do for the tag list.
    await put(registry().url, 'subj/signed', `sha256-${hex}.sig`, (await read(registry().url, 'subj/signed', 'v1')).bytes, OCI_MANIFEST);

    registry().resetRequests();
    const r = await runCli(['annotate', `${registry().host}/subj/signed:v1`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`tag sha256-${hex}`);
    expect(r.stderr).toContain(`tag sha256-${hex}.sig`);
    expect(r.stderr).toContain('stay with the old digest');
    expect(r.stderr).toContain('tagtrail attach');
    // One referrers API request and one tag list, no more.
    expect(registry().count({ kind: 'referrers' })).toBe(1);
    expect(registry().count({ kind: 'tags' })).toBe(1);
    // The referrers tag still lists the referrer for the old digest.
    expect((await read(registry().url, 'subj/signed', `sha256-${hex}`)).json.manifests).toHaveLength(1);
  });
});

describe('a registry that refuses the referrers API with 405', () => {
  const registry = useRegistry();
  const proxy = useFaultProxy(() => ({ upstream: registry().url }));
  const dir = useTempDir('refuses');

  it('annotate still annotates, and says what it could not check', async () => {
    const image = await makeImage(join(dir(), 'img'), { tag: 'v1' });
    await pushImage(image, `${registry().host}/subj/app:v1`);
    proxy().addRule({ method: 'GET', path: /\/referrers\//, fault: { kind: 'status', status: 405 } });
    const r = await runCli(['annotate', `${proxy().host}/subj/app:v1`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('could not check the referrers API (HTTP 405)');
    expect((await read(registry().url, 'subj/app', 'v1')).json.annotations?.['com.gitlab.ci.pipeline_id']).toBe(env.CI_PIPELINE_ID);
  });
});

describe('a busy registry', () => {
  const registry = useRegistry();
  const proxy = useFaultProxy(() => ({ upstream: registry().url }));
  const dir = useTempDir('busy');

  it('attach looks for the empty blob again and retries a manifest PUT refused with MANIFEST_BLOB_UNKNOWN', async () => {
    const image = await makeImage(join(dir(), 'img'), { tag: 'v1' });
    await pushImage(image, `${registry().host}/busy/app:v1`);
    // What distribution answers when a concurrent upload of the same blob has not settled yet.
    const body = JSON.stringify({ errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry', detail: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a' }] });
    proxy().addRule({ method: 'PUT', path: /\/manifests\/sha256:/, times: 2, fault: { kind: 'status', status: 400, body, headers: { 'content-type': 'application/json' } } });
    const r = await runCli(['attach', `${proxy().host}/busy/app:v1`, '-o', 'json'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(proxy().count({ method: 'PUT', path: /\/manifests\/sha256:/ })).toBe(3);
    expect(proxy().count({ method: 'HEAD', kind: 'blob' })).toBe(3);
    const referrer = (JSON.parse(r.stdout) as { referrer: string }).referrer;
    expect((await read(registry().url, 'busy/app', referrer)).json.subject?.digest).toBe(image.digest);
  });
});

describe('an index with more than 1,000 children', () => {
  const registry = useRegistry();
  const dir = useTempDir('wide');

  it('is refused as unreadable (exit 1) by annotate, and sync records it', async () => {
    const image = await makeImage(join(dir(), 'img'), { tag: 'v1' });
    await pushImage(image, `${registry().host}/wide/app:v1`);
    const size = (await read(registry().url, 'wide/app', image.digest)).bytes.byteLength;
    const bytes = indexOf(Array.from({ length: 1001 }, () => ({ mediaType: OCI_MANIFEST, digest: image.digest, size, platform: { os: 'linux', architecture: 'amd64' } })));
    await put(registry().url, 'wide/app', 'many', bytes, OCI_INDEX);

    registry().resetRequests();
    const r = await runCli(['annotate', `${registry().host}/wide/app:many`], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('1001 manifests');
    expect(registry().count({ method: 'PUT' })).toBe(0);
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(1);

    const path = join(dir(), 'catalog.db');
    const sync = await runCli(['sync', '--registry', registry().host, '--repository', 'wide', '--db', `sqlite:${path}`, '-o', 'json']);
    expect(sync.code).toBe(1);
    const db = new Database(path, { readonly: true });
    try {
      expect((db.prepare('SELECT code FROM unreadable_manifests WHERE digest = ?').get(sha256(bytes)) as { code: string } | undefined)?.code).toBe('UNREADABLE_MANIFEST');
    } finally {
      db.close();
    }
  });
});

describe('show', () => {
  const registry = useRegistry();
  const dir = useTempDir('show');

  it('says why there are no build details in terms of the annotations and referrers it lists', async () => {
    const image = await makeImage(join(dir(), 'img'), { tag: 'v1' });
    await pushImage(image, `${registry().host}/plain/app:v1`);
    expect((await runCli(['annotate', '--no-ci', '-a', 'com.example.team=payments', `${registry().host}/plain/app:v1`])).code).toBe(0);
    expect((await runCli(['attach', '--no-ci', '-a', 'com.example.note=hello', `${registry().host}/plain/app:v1`])).code).toBe(0);

    const r = await runCli(['show', `${registry().host}/plain/app:v1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('com.example.team="payments"');
    expect(r.stdout).toContain('com.example.note="hello"');
    expect(r.stdout).not.toContain('carries no');
    expect(r.stdout).not.toContain('no build-details referrer is attached');
    expect(r.stdout).toContain('no build details: the manifest\'s 1 annotation (listed below) holds no com.gitlab.ci.*');
    expect(r.stdout).toContain('the 1 build-details referrer (listed below) holds none of them');
  });
});
