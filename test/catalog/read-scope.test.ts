// What one person may read, on both stores: the repository list, tags, tag history, search,
// one image by digest and insights all keep to the repositories of the person's GitLab projects
// (and, with discovery, public and internal ones); anything else is as if it were not there.
import { beforeAll, describe, expect, it } from 'vitest';
import type { ReadScope } from '../../src/catalog/read-scope.js';
import type { Store } from '../../src/catalog/store.js';
import { imageRecord, indexRecord } from '../helpers/records.js';
import { BACKENDS, useBackend } from './backends.js';
import { hex } from './seed.js';

const AT = new Date('2026-03-04T10:00:00Z');

interface Repo {
  name: string;
  project?: { path: string; visibility: string };
}

const REPOS: Repo[] = [
  { name: 'alpha/app' },
  { name: 'alpha/app/sub/image' },
  // A name that starts like the member project but is not under it.
  { name: 'alpha/appx' },
  { name: 'beta/svc' },
  { name: 'pub/open', project: { path: 'pub/open', visibility: 'public' } },
  { name: 'int/inside/image', project: { path: 'int/inside', visibility: 'internal' } },
  // Discovery recorded a private project the person is not a member of: the record wins.
  { name: 'alpha/app/other', project: { path: 'alpha/app-other', visibility: 'private' } },
];

const MEMBER: ReadScope = { projects: ['alpha/app'], publicAndInternal: false };
const WITH_OPEN: ReadScope = { projects: ['alpha/app'], publicAndInternal: true };
const NOBODY: ReadScope = { projects: [], publicAndInternal: false };

describe.each(BACKENDS)('read scopes on %s', (backendName) => {
  const backend = useBackend(backendName);
  let store: Store;
  const commits = new Map<string, string>();
  const digests = new Map<string, string>();
  let shared: string;
  let indexed: { index: string; tagged: string; other: string };

  beforeAll(async () => {
    store = (await backend().fresh()).store;
    for (const r of REPOS) {
      const commit = hex(20);
      const record = imageRecord({ annotations: { 'com.gitlab.ci.commit_sha': commit } });
      await store.putManifest(record);
      await store.setTag(r.name, 'v1', record.digest, AT);
      commits.set(r.name, commit);
      digests.set(r.name, record.digest);
      if (r.project) await store.setGitlabProject(r.name, { id: 1, ...r.project });
    }
    // One manifest tagged in a readable and an unreadable repository.
    const both = imageRecord({ annotations: { 'com.gitlab.ci.commit_sha': hex(20) } });
    await store.putManifest(both);
    await store.setTag('alpha/app', 'shared', both.digest, AT);
    await store.setTag('beta/svc', 'shared', both.digest, AT);
    shared = both.digest;
    // An index tagged in the unreadable repository; one of its platform manifests also tagged alone in a readable one.
    const index = indexRecord();
    await store.putManifest(index);
    await store.setTag('beta/svc', 'multi', index.digest, AT);
    await store.setTag('alpha/app', 'amd64', index.children![0]!.digest, AT);
    indexed = { index: index.digest, tagged: index.children![0]!.digest, other: index.children![1]!.digest };
  });

  const names = async (scope?: ReadScope): Promise<string[]> => (await store.listRepositories({ limit: 100, ...(scope ? { scope } : {}) })).items.map((r) => r.name);

  it('lists the member project and what lies under it, nothing else', async () => {
    expect(await names()).toHaveLength(REPOS.length);
    expect(await names(MEMBER)).toEqual(['alpha/app', 'alpha/app/sub/image']);
    expect(await names(WITH_OPEN)).toEqual(['alpha/app', 'alpha/app/sub/image', 'int/inside/image', 'pub/open']);
    expect(await names(NOBODY)).toEqual([]);
    expect((await store.listRepositories({ q: 'beta', scope: MEMBER })).items).toEqual([]);
  });

  it('answers an unreadable repository as a missing one: no tags, no history', async () => {
    expect((await store.listTags('beta/svc', { scope: MEMBER })).items).toEqual([]);
    expect((await store.listTags('beta/svc', {})).items.length).toBe(3);
    expect(await store.tagHistory('beta/svc', 'v1', { scope: MEMBER })).toBeNull();
    expect(await store.tagHistory('alpha/appx', 'v1', { scope: MEMBER })).toBeNull();
    expect(await store.tagHistory('alpha/app/other', 'v1', { scope: MEMBER })).toBeNull();
    expect(await store.tagHistory('alpha/app', 'v1', { scope: MEMBER })).not.toBeNull();
    expect((await store.listTags('alpha/app/sub/image', { scope: MEMBER })).items.map((t) => t.tag)).toEqual(['v1']);
  });

  it('finds nothing of unreadable repositories by commit, and only readable ones in a listing', async () => {
    expect((await store.searchImages({ commit: commits.get('beta/svc')!, scope: MEMBER })).items).toEqual([]);
    expect((await store.searchImages({ commit: commits.get('beta/svc')! })).items).toHaveLength(1);
    expect((await store.searchImages({ commit: commits.get('alpha/app')!, scope: MEMBER })).items.map((t) => t.repository)).toEqual(['alpha/app']);
    const all = (await store.searchImages({ limit: 100, scope: MEMBER })).items.map((t) => `${t.repository}:${t.tag}`).sort();
    expect(all).toEqual(['alpha/app/sub/image:v1', 'alpha/app:amd64', 'alpha/app:shared', 'alpha/app:v1']);
    const open = (await store.searchImages({ commit: commits.get('pub/open')!, scope: WITH_OPEN })).items;
    expect(open.map((t) => t.repository)).toEqual(['pub/open']);
  });

  it('shows an image by digest only through a readable repository, with only its readable tags', async () => {
    expect(await store.getImage(digests.get('beta/svc')!, { scope: MEMBER })).toBeNull();
    expect(await store.getImage(digests.get('beta/svc')!)).not.toBeNull();
    const detail = await store.getImage(shared, { scope: MEMBER });
    expect(detail?.tags.map((t) => t.repository)).toEqual(['alpha/app']);
    expect((await store.getImage(shared))?.tags.map((t) => t.repository).sort()).toEqual(['alpha/app', 'beta/svc']);
    // Neither the unreadable index nor its other platform manifest shows through the shared one.
    expect((await store.getImage(indexed.tagged))?.parents).toEqual([indexed.index]);
    expect((await store.getImage(indexed.tagged, { scope: MEMBER }))?.parents).toEqual([]);
    expect(await store.getImage(indexed.other, { scope: MEMBER })).toBeNull();
    expect(await store.getImage(indexed.index, { scope: MEMBER })).toBeNull();
    // Asked through a repository the person may not read, even a readable image is not there.
    expect(await store.getImage(shared, { repository: 'beta/svc', scope: MEMBER })).toBeNull();
    expect((await store.getImage(shared, { repository: 'alpha/app', scope: MEMBER }))?.tags.map((t) => t.repository)).toEqual(['alpha/app']);
  });

  it('reads several images at once by the same rule as one', async () => {
    const asked = [digests.get('beta/svc')!, shared, indexed.tagged, indexed.other, indexed.index];
    const all = await store.getImages(asked);
    expect([...all.keys()].sort()).toEqual([...asked].sort());
    const mine = await store.getImages(asked, { scope: MEMBER });
    expect([...mine.keys()].sort()).toEqual([shared, indexed.tagged].sort());
    for (const [digest, detail] of mine) expect(detail).toEqual(await store.getImage(digest, { scope: MEMBER }));
    expect((await store.getImages(asked, { repository: 'beta/svc', scope: MEMBER })).size).toBe(0);
  });

  it('counts readable repositories only in insights', async () => {
    const window = { from: new Date('2026-01-05T00:00:00Z'), to: new Date('2026-06-01T00:00:00Z') };
    const all = await store.insights(window);
    const mine = await store.insights({ ...window, scope: MEMBER });
    // Images are counted once per repository: every tag above, the shared one twice, the index and its tagged child.
    expect(all.totals.images).toBe(REPOS.length + 4);
    expect(mine.totals.images).toBe(4);
    expect(mine.groups.map((g) => g.name)).toEqual(['alpha']);
    expect((await store.insights({ ...window, scope: NOBODY })).totals.images).toBe(0);
  });

  it('keeps verified builds and pushers to readable repositories: search, insights and the image', async () => {
    const verification = (repository: string) => ({ by: 'gitlab-id-token' as const, issuer: 'https://gitlab.example.com', projectPath: repository, pipelineId: '7', jobId: '8', sha: 'a'.repeat(40), ref: 'main', at: AT });
    await store.recordVerifications([{ repository: 'alpha/app', digest: shared }], verification('alpha/app'));
    await store.recordVerifications([{ repository: 'beta/svc', digest: shared }], verification('beta/svc'));
    await store.recordVerifications([{ repository: 'beta/svc', digest: digests.get('beta/svc')! }], verification('beta/svc'));
    await store.recordPusher(shared, 'buildkit/v0.20', 'buildkit', AT);
    await store.recordPusher(digests.get('beta/svc')!, 'kaniko/1.23', 'kaniko', AT);
    const found = async (scope?: ReadScope): Promise<string[]> =>
      (await store.searchImages({ verified: true, limit: 50, ...(scope ? { scope } : {}) })).items.map((i) => `${i.repository}:${i.tag}`).sort();
    expect(await found()).toEqual(['alpha/app:shared', 'beta/svc:shared', 'beta/svc:v1']);
    expect(await found(MEMBER)).toEqual(['alpha/app:shared']);
    expect(await found(NOBODY)).toEqual([]);

    const window = { from: new Date('2026-01-05T00:00:00Z'), to: new Date('2026-06-01T00:00:00Z') };
    expect(await store.verifiedInsights(window)).toEqual({ verified: 3, pushedBy: { buildkit: 2, kaniko: 1 } });
    expect(await store.verifiedInsights({ ...window, scope: MEMBER })).toEqual({ verified: 1, pushedBy: { buildkit: 1 } });
    expect(await store.verifiedInsights({ ...window, scope: NOBODY })).toEqual({ verified: 0, pushedBy: {} });
    // A namespace or a repository counts its own repositories only, with or without a read scope.
    expect(await store.verifiedInsights({ ...window, namespace: 'beta' })).toEqual({ verified: 2, pushedBy: { buildkit: 1, kaniko: 1 } });
    expect(await store.verifiedInsights({ ...window, repository: 'alpha/app' })).toEqual({ verified: 1, pushedBy: { buildkit: 1 } });
    expect(await store.verifiedInsights({ ...window, namespace: 'beta', scope: MEMBER })).toEqual({ verified: 0, pushedBy: {} });

    expect((await store.getImage(shared))?.verifications?.map((v) => v.repository).sort()).toEqual(['alpha/app', 'beta/svc']);
    expect((await store.getImage(shared, { scope: MEMBER }))?.verifications?.map((v) => v.repository)).toEqual(['alpha/app']);
    expect((await store.getImages([shared], { scope: MEMBER })).get(shared)?.verifications?.map((v) => v.repository)).toEqual(['alpha/app']);
  });

  it('keeps build-details referrers to those a readable repository lists: referrers and the build they lend', async () => {
    // Tagged in a readable and an unreadable repository; only the unreadable one lists a referrer.
    const plain = imageRecord({ annotations: { 'com.example.other': 'x' } });
    await store.putManifest(plain);
    await store.setTag('alpha/app', 'plain', plain.digest, AT);
    await store.setTag('beta/svc', 'plain', plain.digest, AT);
    const secret = { digest: `sha256:${hex(32)}`, subjectDigest: plain.digest, artifactType: 'application/vnd.tagtrail.build.v1+json', annotations: { 'com.gitlab.ci.pipeline_id': '9001', 'com.gitlab.ci.commit_sha': hex(20) } };
    await store.putReferrer(secret);
    await store.setReferrersTag('beta/svc', plain.digest, `sha256:${hex(32)}`, [secret.digest]);

    expect((await store.getImage(plain.digest))?.referrers?.map((r) => r.digest)).toEqual([secret.digest]);
    expect((await store.getImage(plain.digest, { scope: MEMBER }))?.referrers).toEqual([]);
    expect((await store.getImages([plain.digest], { scope: MEMBER })).get(plain.digest)?.referrers).toEqual([]);
    // Once the readable repository lists it too, it counts, naming the readable repository only.
    await store.setReferrersTag('alpha/app', plain.digest, `sha256:${hex(32)}`, [secret.digest]);
    const listed = (await store.getImage(plain.digest, { scope: MEMBER }))?.referrers;
    expect(listed?.map((r) => [r.digest, r.repositories])).toEqual([[secret.digest, ['alpha/app']]]);
  });
});
