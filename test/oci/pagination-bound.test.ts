// A registry whose Link header always names a new next page (every URL different, so the loop
// check does not catch it) must not keep tagtrail listing forever: tag, catalog and referrers
// pagination stop at a bound with PaginationLimitError. The bound is 10,000 pages; the tests
// lower it so they make dozens of requests, not ten thousand.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaginationLimitError, RegistryError, exitCodeFor } from '../../src/errors.js';
import { DEFAULT_MAX_LIST_PAGES, RegistryClient } from '../../src/oci/registry.js';
import { startRecordingServer, type RecordedRequest, type RecordingServer } from '../helpers/fault-proxy.js';

const LIMIT = 25;
let endless: RecordingServer;

/** Page n of any list links to page n+1, forever. */
function answer(req: RecordedRequest): { status: number; headers?: Record<string, string>; body?: string } {
  if (req.path === '/v2/') return { status: 200, body: '{}' };
  const u = new URL(req.url, 'http://x');
  // A Link back to the page itself: caught by the loop check at once.
  if (req.path === '/v2/same/tags/list') return { status: 200, headers: { link: '</v2/same/tags/list?n=1>; rel="next"' }, body: JSON.stringify({ name: 'same', tags: ['a'] }) };
  const n = Number(u.searchParams.get('last')?.replace(/^p/, '') ?? '0') + 1;
  const link = `<${u.pathname}?n=1&last=p${n}>; rel="next"`;
  if (req.path.endsWith('/tags/list')) return { status: 200, headers: { 'content-type': 'application/json', link }, body: JSON.stringify({ name: 'loop', tags: [`p${n}`] }) };
  if (req.path === '/v2/_catalog') return { status: 200, headers: { 'content-type': 'application/json', link }, body: JSON.stringify({ repositories: [`r/p${n}`] }) };
  if (req.path.includes('/referrers/')) {
    return { status: 200, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json', link }, body: JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }) };
  }
  return { status: 404 };
}

function client(maxListPages?: number): RegistryClient {
  return new RegistryClient({ fetch: globalThis.fetch, credentials: () => undefined, retry: { maxAttempts: 1 }, ...(maxListPages ? { maxListPages } : {}) });
}

async function drain(list: AsyncGenerator<string>): Promise<{ items: string[]; error: unknown }> {
  const items: string[] = [];
  try {
    for await (const x of list) items.push(x);
  } catch (err) {
    return { items, error: err };
  }
  return { items, error: undefined };
}

beforeAll(async () => {
  endless = await startRecordingServer(answer);
});

afterAll(async () => {
  await endless?.stop();
});

describe('pagination bound', () => {
  it('is 10,000 pages by default', () => {
    expect(DEFAULT_MAX_LIST_PAGES).toBe(10_000);
  });

  it('a tag list whose Link never ends stops at the bound with PaginationLimitError (upstream, exit 1)', async () => {
    endless.requests.length = 0;
    const { items, error } = await drain(client(LIMIT).listTags(endless.host, 'loop', 1));
    expect(error).toBeInstanceOf(PaginationLimitError);
    expect(exitCodeFor(error as PaginationLimitError)).toBe(1);
    expect((error as Error).message).toContain('tag list of loop');
    expect(items).toHaveLength(LIMIT);
    expect(endless.requests.filter((r) => r.path === '/v2/loop/tags/list')).toHaveLength(LIMIT);
  });

  it('a Link back to a page already read is refused at once', async () => {
    endless.requests.length = 0;
    const { error } = await drain(client(LIMIT).listTags(endless.host, 'same', 1));
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as Error).message).toContain('pagination loops');
    expect(endless.requests.filter((r) => r.path === '/v2/same/tags/list')).toHaveLength(1);
  });

  it('the repository catalog has the same bound', async () => {
    endless.requests.length = 0;
    const { items, error } = await drain(client(LIMIT).listRepositories(endless.host, 1));
    expect(error).toBeInstanceOf(PaginationLimitError);
    expect(items).toHaveLength(LIMIT);
    expect(endless.requests.filter((r) => r.path === '/v2/_catalog')).toHaveLength(LIMIT);
  });

  it('and so does the referrers API', async () => {
    endless.requests.length = 0;
    const digest = `sha256:${'a'.repeat(64)}`;
    await expect(client(LIMIT).listReferrers(endless.host, 'loop', digest)).rejects.toBeInstanceOf(PaginationLimitError);
    expect(endless.requests.filter((r) => r.path.includes('/referrers/'))).toHaveLength(LIMIT);
  });
});
