// The SQL of getImages: the records of several manifests (as getImage gives one) in a fixed number
// of queries per chunk of digests, whatever their number, shared by both dialects and called from
// SqlStore. Pages that show a row per digest (a tag's earlier digests, an index's platform
// manifests) read them this way instead of once per row.
import { type Annotations, emptyAnnotations } from '../oci/annotations.js';
import type { Platform } from '../oci/manifest.js';
import { referrersOfMany, repositoryId } from './referrer-store.js';
import { STORE_MAX_PAGE_SIZE } from './paging.js';
import { type VerifiedBuild, pushersOf, verificationKey, verificationsOf } from './verifications.js';
import type { Queryable, Row } from './sql.js';
import type { ImageChild, ImageDetail } from './types.js';

const IN_CHUNK = 500;

function marks(n: number): string {
  return new Array(n).fill('?').join(', ');
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

function platformOf(r: Row): Platform | null {
  if (r.os == null && r.architecture == null) return null;
  const p: Platform = { os: (r.os as string | null) ?? '', architecture: (r.architecture as string | null) ?? '' };
  if (r.variant != null) p.variant = r.variant as string;
  return p;
}

/** Rows of `sql` (whose only placeholders are the IN list, marked `(IN)`) for every chunk of `values`. */
async function allIn(q: Queryable, sql: string, values: readonly (string | number)[], before: readonly (string | number)[] = []): Promise<Row[]> {
  const rows: Row[] = [];
  for (let i = 0; i < values.length; i += IN_CHUNK) {
    const part = values.slice(i, i + IN_CHUNK);
    rows.push(...(await q.all<Row>(sql.replace('(IN)', `(${marks(part.length)})`), [...before, ...part])));
  }
  return rows;
}

/**
 * The stored manifests among `digests`, by digest (one absent from the catalog is left out).
 * Each record equals what getImage(digest, options) returns. Digests are checked by the caller.
 */
export async function getImages(q: Queryable, digests: readonly string[], options: { repository?: string } = {}): Promise<Map<string, ImageDetail>> {
  const unique = [...new Set(digests)];
  const out = new Map<string, ImageDetail>();
  if (unique.length === 0) return out;
  const manifests = await allIn(q, 'SELECT id, digest, media_type, size, raw, artifact_type, config_digest, has_build, stored_at FROM manifests WHERE digest IN (IN)', unique);
  if (manifests.length === 0) return out;
  const ids = manifests.map((m) => num(m.id));
  const found = manifests.map((m) => m.digest as string);

  // Config labels: a config read with no labels still counts as read (an empty record).
  const configDigests = [...new Set(manifests.map((m) => m.config_digest).filter((d): d is string => typeof d === 'string'))];
  const labels = new Map<string, Annotations>();
  for (const r of await allIn(q, 'SELECT c.digest, l.key, l.value FROM configs c LEFT JOIN config_labels l ON l.config_id = c.id WHERE c.digest IN (IN)', configDigests)) {
    const set = labels.get(r.digest as string) ?? emptyAnnotations();
    if (r.key !== null && r.key !== undefined) set[r.key as string] = r.value as string;
    labels.set(r.digest as string, set);
  }

  const childRows = await allIn(
    q,
    `SELECT c.parent_id, c.position, c.child_digest, c.media_type, c.size, c.os, c.architecture, c.variant, cm.id AS child_id
     FROM manifest_children c LEFT JOIN manifests cm ON cm.digest = c.child_digest WHERE c.parent_id IN (IN)`,
    ids,
  );
  childRows.sort((a, b) => num(a.parent_id) - num(b.parent_id) || num(a.position) - num(b.position));
  const childIds = childRows.map((r) => r.child_id).filter((v) => v !== null && v !== undefined).map(num);
  const annotations = new Map<number, Annotations>([...ids, ...childIds].map((i) => [i, emptyAnnotations()]));
  for (const r of await allIn(q, 'SELECT manifest_id, key, value FROM annotations WHERE manifest_id IN (IN)', [...new Set([...ids, ...childIds])])) {
    annotations.get(num(r.manifest_id))![r.key as string] = r.value as string;
  }

  const parents = new Map<string, string[]>();
  for (const r of await allIn(q, 'SELECT DISTINCT c.child_digest, m.digest FROM manifest_children c JOIN manifests m ON m.id = c.parent_id WHERE c.child_digest IN (IN) ORDER BY m.digest', found)) {
    parents.set(r.child_digest as string, [...(parents.get(r.child_digest as string) ?? []), r.digest as string]);
  }

  // Live tags, at most STORE_MAX_PAGE_SIZE a digest, as getImage lists them.
  const tags = new Map<string, ImageDetail['tags']>();
  const tagRows = await allIn(
    q,
    `SELECT digest, repository, tag, updated_at FROM (
       SELECT g.digest, r.name AS repository, g.name AS tag, g.updated_at, ROW_NUMBER() OVER (PARTITION BY g.digest ORDER BY r.name, g.name) AS n
       FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE g.digest IN (IN) AND g.deleted_at IS NULL) t
     WHERE n <= ${STORE_MAX_PAGE_SIZE} ORDER BY repository, tag`,
    found,
  );
  for (const t of tagRows) {
    tags.set(t.digest as string, [...(tags.get(t.digest as string) ?? []), { repository: t.repository as string, tag: t.tag as string, updatedAt: new Date(num(t.updated_at)) }]);
  }

  const repoId = options.repository === undefined ? null : ((await repositoryId(q, options.repository)) ?? -1);
  const referrers = await referrersOfMany(q, found, repoId);
  // Verified build reports (newest first) and pushers, as getImage gives them.
  const verifications = new Map<string, (VerifiedBuild & { repository: string })[]>();
  const allVerifications = await verificationsOf(q, found);
  for (const digest of found) {
    const list = [...allVerifications.values()].filter((v) => allVerifications.get(verificationKey(v.repository, digest)) === v);
    if (list.length > 0) verifications.set(digest, list);
  }
  const pushers = await pushersOf(q, found);

  const children = new Map<number, ImageChild[]>();
  for (const r of childRows) {
    const child: ImageChild = {
      digest: r.child_digest as string,
      mediaType: (r.media_type as string | null) ?? null,
      size: r.size === null || r.size === undefined ? null : num(r.size),
      platform: platformOf(r),
      annotations: r.child_id == null ? null : (annotations.get(num(r.child_id)) ?? null),
    };
    children.set(num(r.parent_id), [...(children.get(num(r.parent_id)) ?? []), child]);
  }

  for (const m of manifests) {
    const id = num(m.id);
    const digest = m.digest as string;
    out.set(digest, {
      digest,
      mediaType: m.media_type as string,
      size: num(m.size),
      raw: Buffer.from(m.raw as Uint8Array),
      artifactType: (m.artifact_type as string | null) ?? null,
      configDigest: (m.config_digest as string | null) ?? null,
      annotations: annotations.get(id)!,
      labels: typeof m.config_digest === 'string' ? (labels.get(m.config_digest) ?? null) : null,
      hasBuildAnnotations: num(m.has_build) === 1,
      children: children.get(id) ?? [],
      parents: parents.get(digest) ?? [],
      tags: tags.get(digest) ?? [],
      storedAt: new Date(num(m.stored_at)),
      referrers: referrers.get(digest) ?? [],
      verifications: verifications.get(digest) ?? [],
      ...(pushers.has(digest) ? { pusher: pushers.get(digest)! } : {}),
    });
  }
  return out;
}
