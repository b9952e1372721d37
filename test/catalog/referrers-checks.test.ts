// The catalog believes a referrers tag and a referrer only after the checks `tagtrail show`
// makes: GitLab.com's registry answering the sha256-<hex> tag with the subject itself (emulated by
// the fault proxy's rewrite, as in the attach tests), and a listed referrer whose manifest names
// another subject. Against a real distribution 2.8; read back with SQL.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_DETAILS_ARTIFACT_TYPE } from '../../src/oci/referrers.js';
import { OCI_INDEX } from '../../src/oci/mediatypes.js';
import { gitlabEnv, runCli } from '../helpers/cli.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { useRegistry, useTempDir } from '../helpers/fixtures.js';
import { makeImage, makeIndex, pushImage } from '../helpers/images.js';

function query(path: string, sql: string): Record<string, unknown>[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

function pipelineTags(path: string, pipeline: string): string[] {
  return query(
    path,
    `SELECT g.name AS tag FROM tag_terms t JOIN tags g ON g.id = t.tag_id WHERE t.key = 'com.gitlab.ci.pipeline_id' AND t.value = '${pipeline}' AND g.deleted_at IS NULL ORDER BY g.name`,
  ).map((r) => String(r.tag));
}

async function attach(image: string, pipeline: string): Promise<{ referrer: string; subject: { digest: string; size: number; mediaType: string } }> {
  const r = await runCli(['attach', image, '-o', 'json'], { env: gitlabEnv({ CI_PIPELINE_ID: pipeline }) });
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { referrer: string; subject: { digest: string; size: number; mediaType: string } };
}

async function sync(host: string, repository: string, db: string): Promise<{ code: number; stderr: string }> {
  const r = await runCli(['sync', '--registry', host, '--repository', repository, '--db', `sqlite:${db}`, '-o', 'json']);
  return { code: r.code, stderr: r.stderr };
}

describe('the catalog checks referrers tags and referrers as show does', () => {
  const registry = useRegistry();
  const dir = useTempDir('referrers-checks');
  let proxy: FaultProxy;

  beforeAll(async () => {
    proxy = await startFaultProxy({ upstream: registry().url });
    proxy.addRule({ method: /^(GET|HEAD)$/, path: /\/manifests\/sha256-[a-f0-9]{64}$/, fault: { kind: 'rewrite', to: (url) => url.replace(/\/manifests\/sha256-/, '/manifests/sha256:') } });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it("a registry that answers the referrers tag with the subject itself (GitLab.com) gives no referrer, with a warning; the real tag is read once it is seen", async () => {
    const index = await makeIndex(join(dir(), 'gl'), { tag: 'v1', image: { seed: 'catalog-gl', layers: 1 } });
    const digest = await pushImage(index, `${registry().host}/quirk/app:v1`);
    await attach(`${registry().host}/quirk/app:v1`, '6101');
    const db = join(dir(), 'quirk.db');

    const quirky = await sync(proxy.host, 'quirk', db);
    expect(quirky.stderr).toContain(`resolved the tag sha256-${digest.slice(7)} to the subject ${digest} itself`);
    expect(pipelineTags(db, '6101')).toEqual([]);
    expect(query(db, 'SELECT COUNT(*) AS n FROM referrer_links')).toEqual([{ n: 0 }]);
    expect(query(db, `SELECT build_source FROM manifests WHERE digest = '${digest}'`)).toEqual([{ build_source: 'none' }]);

    // The same catalog read from the registry itself: the tag's real digest is new, so it is read.
    const direct = await sync(registry().host, 'quirk', db);
    expect(direct.stderr).toBe('');
    expect(pipelineTags(db, '6101')).toEqual(['v1']);
    expect(query(db, `SELECT build_source FROM manifests WHERE digest = '${digest}'`)).toEqual([{ build_source: 'referrer' }]);
  });

  it('a listed referrer whose manifest names another subject is ignored, with a warning', async () => {
    const a = await makeImage(join(dir(), 'a'), { tag: 'a', seed: 'catalog-mismatch-a', layers: 1 });
    const b = await makeImage(join(dir(), 'b'), { tag: 'b', seed: 'catalog-mismatch-b', layers: 1 });
    const digestA = await pushImage(a, `${registry().host}/mismatch/app:a`);
    const digestB = await pushImage(b, `${registry().host}/mismatch/app:b`);
    const onB = await attach(`${registry().host}/mismatch/app:b`, '6202');
    // A's referrers tag, written by hand, lists B's referrer.
    const size = (await (await fetch(`${registry().url}/v2/mismatch/app/manifests/${onB.referrer}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).arrayBuffer()).byteLength;
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: onB.referrer, size, artifactType: BUILD_DETAILS_ARTIFACT_TYPE }],
    });
    const put = await fetch(`${registry().url}/v2/mismatch/app/manifests/sha256-${digestA.slice(7)}`, { method: 'PUT', headers: { 'content-type': OCI_INDEX }, body });
    expect(put.status).toBe(201);

    const db = join(dir(), 'mismatch.db');
    const r = await sync(registry().host, 'mismatch', db);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`the referrer mismatch/app@${onB.referrer} does not name ${digestA} as its subject`);
    expect(pipelineTags(db, '6202')).toEqual(['b']);
    expect(query(db, 'SELECT subject_digest, referrer_digest FROM referrer_links ORDER BY subject_digest')).toEqual([{ subject_digest: digestB, referrer_digest: onB.referrer }]);
  });
});
