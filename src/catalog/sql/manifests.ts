// Manifests and config labels as ingest stores them (each once by digest), what a crawl could
// not read, and one manifest read back whole (getImage).
import { type Annotations, emptyAnnotations } from '../../oci/annotations.js';
import { labelsOfConfig } from '../../oci/config.js';
import { hasBuildAnnotations } from '../../details/keys.js';
import { detectBuilder } from '../builder.js';
import { STORE_MAX_PAGE_SIZE } from '../paging.js';
import type { ImageChild, ImageDetail, ManifestRecord } from '../types.js';
import { VERSION } from '../../version.js';
import { IN_CHUNK, MAX_PARAMS, type Queryable, type Row, chunks, clean, cleanRecord, insertMany, marks, num, numOrNull, toBuffer } from './driver.js';
import { referrersOf, repositoryId } from './referrers.js';
import { evidenceChanged, lockEvidenceChange, platformOf } from './terms.js';
import * as verified from './verifications.js';

function sameRecord(a: Annotations, b: Annotations): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

export async function hasManifest(db: Queryable, digest: string): Promise<boolean> {
  return (await db.all('SELECT 1 AS one FROM manifests WHERE digest = ?', [digest])).length > 0;
}

/** The digests among these that the catalog holds, in one statement per chunk. */
export async function storedDigests(db: Queryable, digests: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (const part of chunks([...new Set(digests)], IN_CHUNK)) {
    for (const r of await db.all<{ digest: string }>(`SELECT digest FROM manifests WHERE digest IN (${marks(part.length)})`, part)) found.add(r.digest);
  }
  return found;
}

/**
 * Beside other writers: locks the manifests being stored (and their children) and their configs,
 * exclusively, for the images their tags' terms are built from; a config whose labels come with
 * the record may change, one without is only read. So is the config of a child the catalog has
 * already (an index listing it comes without its record): the terms of a tag on the index read
 * it, and a lock of it asked for later, after these, would make the transaction run again alone
 * (terms.ts lockEvidence).
 */
async function lockWhatManifestsChange(q: Queryable, records: readonly ManifestRecord[]): Promise<void> {
  const touched = new Set<string>();
  const labelled = new Set<string>();
  const read = new Set<string>();
  const stored = new Set<string>();
  const walk = (rec: ManifestRecord): void => {
    touched.add(rec.digest);
    if (rec.configDigest) (rec.labels !== undefined || rec.config !== undefined ? labelled : read).add(rec.configDigest);
    for (const c of rec.children ?? []) {
      touched.add(c.digest);
      if (c.manifest) walk(c.manifest);
      else stored.add(c.digest);
    }
  };
  records.forEach(walk);
  for (const part of chunks([...stored], IN_CHUNK)) {
    const rows = await q.all<{ config_digest: string }>(`SELECT config_digest FROM manifests WHERE digest IN (${marks(part.length)}) AND config_digest IS NOT NULL`, part);
    for (const r of rows) if (!labelled.has(r.config_digest)) read.add(r.config_digest);
  }
  await lockEvidenceChange(q, [...touched], [...labelled], [...read]);
}

/** (digest, key, value) of each of these manifests' annotations. */
function annotationRows(records: readonly ManifestRecord[], annotations: ReadonlyMap<string, Annotations>): [string, string, string][] {
  return records.flatMap((rec) => Object.entries(annotations.get(rec.digest) ?? {}).map(([k, v]): [string, string, string] => [rec.digest, k, v]));
}

/** Stores a manifest (and the records of its children) once by digest; the images it changes follow (terms.ts). */
export async function putManifest(q: Queryable, record: ManifestRecord): Promise<{ inserted: boolean }> {
  return (await putManifests(q, [record]))[0]!;
}

/**
 * Stores several manifests as putManifest does each, with a few multi-row statements for all of
 * them, and rebuilds what they change once (a crawl writes a batch per transaction).
 */
export async function putManifests(q: Queryable, records: readonly ManifestRecord[]): Promise<{ inserted: boolean }[]> {
  if (q.lock) await lockWhatManifestsChange(q, records);
  const configs = new Set<string>();
  // Every record with its children's, children first (an index's row follows its platforms'):
  // each one's config labels in that order, as putManifest of each would; rows once by digest.
  const ordered: ManifestRecord[] = [];
  const visit = (rec: ManifestRecord): void => {
    for (const child of rec.children ?? []) if (child.manifest) visit(child.manifest);
    ordered.push(rec);
  };
  records.forEach(visit);
  const flat = new Map<string, ManifestRecord>();
  for (const rec of ordered) if (!flat.has(rec.digest)) flat.set(rec.digest, rec);
  for (const rec of ordered) {
    const labels = rec.labels ?? (rec.config !== undefined ? (labelsOfConfig(rec.config) ?? emptyAnnotations()) : undefined);
    if (rec.configDigest != null && labels && (await putLabels(q, rec.configDigest, labels, rec.config))) configs.add(rec.configDigest);
  }
  const ids = new Map<string, number>();
  const annotations = new Map<string, Annotations>();
  const columns = 8;
  const parts = chunks([...flat.values()], Math.floor(MAX_PARAMS / columns));
  for (const rec of flat.values()) annotations.set(rec.digest, cleanRecord(rec.annotations ?? {}));
  // Their annotations with them, where one statement can carry both (PostgreSQL, one chunk).
  const along = q.dialect?.writableCtes === true && parts.length === 1 ? annotationRows([...flat.values()], annotations) : [];
  const carried = along.length > 0 && along.length * 3 <= MAX_PARAMS;
  for (const part of parts) {
    const params = part.flatMap((rec) => {
      const cleaned = annotations.get(rec.digest)!;
      const raw = toBuffer(rec.raw);
      return [rec.digest, rec.mediaType, raw.byteLength, raw, rec.artifactType ?? null, rec.configDigest ?? null, hasBuildAnnotations(cleaned) ? 1 : 0, Date.now()];
    });
    const insert = `INSERT INTO manifests (digest, media_type, size, raw, artifact_type, config_digest, has_build, stored_at)
       VALUES ${part.map(() => `(${marks(columns)})`).join(', ')} ON CONFLICT (digest) DO NOTHING RETURNING id, digest`;
    const rows = carried
      ? await q.all<{ id: unknown; digest: string }>(
          `WITH m AS (${insert}), a AS (INSERT INTO annotations (manifest_id, key, value)
             SELECT m.id, v.column2, v.column3 FROM (VALUES ${along.map(() => '(?, ?, ?)').join(', ')}) AS v JOIN m ON m.digest = v.column1)
           SELECT id, digest FROM m`,
          [...params, ...along.flat()],
        )
      : await q.all<{ id: unknown; digest: string }>(insert, params);
    for (const r of rows) ids.set(r.digest, num(r.id));
  }
  const inserted = [...flat.values()].filter((rec) => ids.has(rec.digest));
  const idOf = (rec: ManifestRecord): number => ids.get(rec.digest) as number;
  if (!carried) {
    await insertMany(
      q,
      'annotations',
      ['manifest_id', 'key', 'value'],
      inserted.flatMap((rec) => Object.entries(annotations.get(rec.digest) ?? {}).map(([k, v]) => [idOf(rec), k, v])),
    );
  }
  await insertMany(
    q,
    'manifest_children',
    ['parent_id', 'position', 'child_digest', 'media_type', 'size', 'os', 'architecture', 'variant'],
    inserted.flatMap((rec) =>
      (rec.children ?? []).map((c, i) => [
        idOf(rec),
        i,
        c.digest,
        c.mediaType ?? c.manifest?.mediaType ?? null,
        c.size ?? (c.manifest ? c.manifest.raw.byteLength : null),
        c.platform?.os ?? null,
        c.platform?.architecture ?? null,
        c.platform?.variant ?? null,
      ]),
    ),
  );
  await evidenceChanged(q, new Set(inserted.map((rec) => rec.digest)), configs);
  // A digest twice among the records (or a child record of an earlier one) was inserted by the
  // first of them only, as putManifest of each would answer.
  const claimed = new Set<string>();
  const claim = (rec: ManifestRecord): void => {
    claimed.add(rec.digest);
    for (const c of rec.children ?? []) if (c.manifest) claim(c.manifest);
  };
  return records.map((rec) => {
    const first = ids.has(rec.digest) && !claimed.has(rec.digest);
    claim(rec);
    return { inserted: first };
  });
}

/**
 * Records a config's labels and, when the whole config was read, what it says about the builder;
 * returns whether anything changed.
 */
async function putLabels(q: Queryable, configDigest: string, labels: Annotations, config?: unknown): Promise<boolean> {
  const cleaned = cleanRecord(labels);
  const said = config === undefined ? null : detectBuilder({ manifest: {}, config, configRead: true });
  const existing = await q.all<Row>('SELECT id, builder FROM configs WHERE digest = ?', [configDigest]);
  let id: number;
  if (existing[0]) {
    id = num(existing[0].id);
    const current = emptyAnnotations();
    for (const r of await q.all<{ key: string; value: string }>('SELECT key, value FROM config_labels WHERE config_id = ?', [id])) current[r.key] = r.value;
    const newBuilder = said !== null && existing[0].builder == null;
    if (newBuilder) await q.run('UPDATE configs SET builder = ?, builder_confidence = ?, builder_evidence = ? WHERE id = ?', [said.builder, said.confidence, JSON.stringify(said.evidence.map(clean)), id]);
    if (sameRecord(current, cleaned)) return newBuilder;
    await q.run('DELETE FROM config_labels WHERE config_id = ?', [id]);
    await q.run('UPDATE configs SET fetched_at = ? WHERE id = ?', [Date.now(), id]);
  } else {
    const rows = await q.all<{ id: unknown }>('INSERT INTO configs (digest, fetched_at, builder, builder_confidence, builder_evidence) VALUES (?, ?, ?, ?, ?) RETURNING id', [
      configDigest,
      Date.now(),
      said?.builder ?? null,
      said?.confidence ?? null,
      said ? JSON.stringify(said.evidence.map(clean)) : null,
    ]);
    id = num(rows[0]!.id);
  }
  await insertMany(q, 'config_labels', ['config_id', 'key', 'value'], Object.entries(cleaned).map(([k, v]) => [id, k, v]));
  return true;
}

export async function putConfigLabels(q: Queryable, configDigest: string, labels: Annotations, config?: unknown): Promise<void> {
  await lockEvidenceChange(q, [], [configDigest]);
  if (await putLabels(q, configDigest, labels, config)) await evidenceChanged(q, new Set(), new Set([configDigest]));
}

export async function hasReadConfig(db: Queryable, configDigest: string): Promise<boolean> {
  return (await db.all('SELECT 1 AS one FROM configs WHERE digest = ?', [configDigest])).length > 0;
}

export async function markUnreadable(q: Queryable, digest: string, code: string, reason: string, at: Date): Promise<void> {
  await q.run(
      `INSERT INTO unreadable_manifests (digest, code, reason, tagtrail_version, seen_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (digest) DO UPDATE SET code = excluded.code, reason = excluded.reason, tagtrail_version = excluded.tagtrail_version, seen_at = excluded.seen_at`,
    [digest, code.slice(0, 64), reason.slice(0, 1000), VERSION, at.getTime()],
  );
}

/** unreadable() of each of these digests, in one statement per chunk: those recorded, by digest. */
export async function unreadableAmong(db: Queryable, digests: readonly string[]): Promise<Map<string, { code: string; reason: string }>> {
  const found = new Map<string, { code: string; reason: string }>();
  for (const part of chunks([...new Set(digests)], IN_CHUNK)) {
    const rows = await db.all<Row>(`SELECT digest, code, reason FROM unreadable_manifests WHERE tagtrail_version = ? AND digest IN (${marks(part.length)})`, [VERSION, ...part]);
    for (const r of rows) found.set(String(r.digest), { code: String(r.code), reason: String(r.reason) });
  }
  return found;
}

export async function unreadable(db: Queryable, digest: string): Promise<{ code: string; reason: string } | undefined> {
  const rows = await db.all<Row>('SELECT code, reason FROM unreadable_manifests WHERE digest = ? AND tagtrail_version = ?', [digest, VERSION]);
  return rows[0] ? { code: String(rows[0].code), reason: String(rows[0].reason) } : undefined;
}

export async function getImage(db: Queryable, digest: string, options: { repository?: string }): Promise<ImageDetail | null> {
  const rows = await db.all<Row>(
    'SELECT id, digest, media_type, size, raw, artifact_type, config_digest, has_build, stored_at FROM manifests WHERE digest = ?',
    [digest],
  );
  const m = rows[0];
  if (!m) return null;
  const id = num(m.id);
  const annotationsOf = async (ids: number[]): Promise<Map<number, Annotations>> => {
    const out = new Map<number, Annotations>(ids.map((i) => [i, emptyAnnotations()]));
    for (const part of chunks(ids, IN_CHUNK)) {
      for (const r of await db.all<Row>(`SELECT manifest_id, key, value FROM annotations WHERE manifest_id IN (${marks(part.length)})`, part)) {
        out.get(num(r.manifest_id))![r.key as string] = r.value as string;
      }
    }
    return out;
  };
  let labels: Annotations | null = null;
  if (m.config_digest != null) {
    const config = await db.all<{ id: unknown }>('SELECT id FROM configs WHERE digest = ?', [m.config_digest as string]);
    if (config[0]) {
      labels = emptyAnnotations();
      for (const r of await db.all<Row>('SELECT key, value FROM config_labels WHERE config_id = ?', [num(config[0].id)])) labels[r.key as string] = r.value as string;
    }
  }
  const childRows = await db.all<Row>(
    `SELECT c.child_digest, c.media_type, c.size, c.os, c.architecture, c.variant, cm.id AS child_id
     FROM manifest_children c LEFT JOIN manifests cm ON cm.digest = c.child_digest WHERE c.parent_id = ? ORDER BY c.position`,
    [id],
  );
  const childIds = childRows.map((r) => r.child_id).filter((v) => v !== null && v !== undefined).map(num);
  const annotations = await annotationsOf([id, ...childIds]);
  const children: ImageChild[] = childRows.map((r) => ({
    digest: r.child_digest as string,
    mediaType: (r.media_type as string | null) ?? null,
    size: numOrNull(r.size),
    platform: platformOf(r),
    annotations: r.child_id == null ? null : (annotations.get(num(r.child_id)) ?? null),
  }));
  const parents = await db.all<{ digest: string }>(
    'SELECT DISTINCT m.digest FROM manifest_children c JOIN manifests m ON m.id = c.parent_id WHERE c.child_digest = ? ORDER BY m.digest',
    [digest],
  );
  const tags = await db.all<Row>(
    `SELECT r.name AS repository, g.name AS tag, g.updated_at FROM tags g JOIN repositories r ON r.id = g.repository_id
     WHERE g.digest = ? AND g.deleted_at IS NULL ORDER BY r.name, g.name LIMIT ${STORE_MAX_PAGE_SIZE}`,
    [digest],
  );
  const own = annotations.get(id)!;
  return {
    digest,
    mediaType: m.media_type as string,
    size: num(m.size),
    raw: Buffer.from(m.raw as Uint8Array),
    artifactType: (m.artifact_type as string | null) ?? null,
    configDigest: (m.config_digest as string | null) ?? null,
    annotations: own,
    labels,
    hasBuildAnnotations: num(m.has_build) === 1,
    children,
    parents: parents.map((p) => p.digest),
    tags: tags.map((t) => ({ repository: t.repository as string, tag: t.tag as string, updatedAt: new Date(num(t.updated_at)) })),
    storedAt: new Date(num(m.stored_at)),
    referrers:
      options.repository === undefined
        ? await referrersOf(db, digest, null)
        : await referrersOf(db, digest, (await repositoryId(db, options.repository)) ?? -1),
    verifications: [...(await verified.verificationsOf(db, [digest])).values()],
    ...(await verified.pusherOf(db, digest).then((p) => (p ? { pusher: p } : {}))),
  };
}

