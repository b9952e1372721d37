// Store records → the JSON the API answers with. `build` is shaped as `tagtrail show` prints it
// (buildFromAnnotations): from the annotations, else from the config labels, else null.
import { type Build, hasBuildAnnotations, labelsAsAnnotations } from '../gitlab/build.js';
import { buildDetails } from '../catalog/derived.js';
import { type GitlabServer, checkedBuildLinks } from './ui/links.js';
import type { Annotations } from '../oci/annotations.js';
import { mergeAnnotations } from '../oci/inspect.js';
import { formatPlatform, platformNames } from '../oci/manifest.js';
import type { StoreReader } from '../catalog/store.js';
import type { VerifiedBuild } from '../catalog/verifications.js';
import type { ImageDetail, ReferrerInfo, RepositorySummary, TagHistory, TagItem } from '../catalog/types.js';
import type { z } from 'zod';
import type { ImageDetailSchema, ImageItemSchema, RepositorySchema, TagHistorySchema, VerifiedSchema } from './api/schemas.js';

/** The build details as the API gives them: URLs only where the browser would link them (links.ts). */
export function buildOf(servers: readonly GitlabServer[], annotations: Annotations, labelAnnotations: Annotations | undefined | null, referrer?: ReferrerInfo): Build | null {
  const build = buildDetails(annotations, labelAnnotations, referrer);
  return build === null ? null : checkedBuildLinks(build, servers);
}


function plain(a: Annotations): Record<string, string> {
  return { ...a };
}

export function imageItem(t: TagItem, servers: readonly GitlabServer[]): z.output<typeof ImageItemSchema> {
  return {
    repository: t.repository,
    tag: t.tag,
    digest: t.digest,
    mediaType: t.mediaType,
    platforms: platformNames(t.platforms),
    updatedAt: t.updatedAt.toISOString(),
    annotations: plain(t.annotations),
    build: withVerified(buildOf(servers, t.annotations, t.labelAnnotations, t.referrer), t.verified),
  };
}

type VerifiedJson = z.output<typeof VerifiedSchema>;

function verifiedJson(v: VerifiedBuild): VerifiedJson {
  const { by, issuer, projectPath, pipelineId, jobId, sha, ref, at } = v;
  return { by, issuer, projectPath, pipelineId, jobId, sha, ref, at: at.toISOString() };
}

/** `build.verified`: present only when a build report for this repository and digest was verified. */
export function withVerified(build: Build | null, verified: VerifiedBuild | undefined): (Build & { verified?: VerifiedJson }) | null {
  if (!build || !verified) return build;
  return { ...build, verified: verifiedJson(verified) };
}

export function repositoryItem(r: RepositorySummary): z.output<typeof RepositorySchema> {
  return {
    name: r.name,
    tagCount: r.tagCount,
    buildTagCount: r.buildTagCount,
    firstSeen: r.firstSeen.toISOString(),
    lastUpdated: r.lastUpdated.toISOString(),
  };
}

export function tagHistoryItem(h: TagHistory): z.output<typeof TagHistorySchema> {
  return {
    repository: h.repository,
    tag: h.tag,
    digest: h.digest,
    deleted: h.deletedAt !== null,
    deletedAt: h.deletedAt?.toISOString() ?? null,
    updatedAt: h.updatedAt.toISOString(),
    firstSeen: h.firstSeen?.toISOString() ?? null,
    entries: h.entries.map((e) => ({ digest: e.digest, since: e.since.toISOString(), until: e.until?.toISOString() ?? null, end: e.end })),
    ...(h.nextCursor ? { nextCursor: h.nextCursor } : {}),
  };
}

/**
 * One manifest in detail: its own annotations, each child's, the labels, and the build details
 * of the image as a whole (the index's annotations, then its children's, then config labels).
 */
export async function imageDetail(store: StoreReader, d: ImageDetail, servers: readonly GitlabServer[]): Promise<z.output<typeof ImageDetailSchema>> {
  const childAnnotations = d.children.map((c) => c.annotations).filter((a): a is Annotations => a !== null);
  const merged = mergeAnnotations(d.annotations, childAnnotations);
  let labelAnnotations: Annotations | undefined;
  if (!hasBuildAnnotations(merged)) {
    if (d.labels) labelAnnotations = labelsAsAnnotations(d.labels);
    // An index has no config: its platform manifests' labels stand in, the first that has build
    // details, all read at once.
    const stored = d.children.filter((c) => c.annotations !== null).map((c) => c.digest);
    const needed = stored.length > 0 && !(labelAnnotations && hasBuildAnnotations(labelAnnotations));
    const children = needed ? await store.getImages(stored) : new Map<string, ImageDetail>();
    for (const digest of stored) {
      if (labelAnnotations && hasBuildAnnotations(labelAnnotations)) break;
      const labels = children.get(digest)?.labels;
      const mapped = labels ? labelsAsAnnotations(labels) : undefined;
      if (mapped && hasBuildAnnotations(mapped)) labelAnnotations = mapped;
    }
  }
  const insight = await store.manifestInsight(d.digest);
  let manifest: unknown = null;
  try {
    manifest = JSON.parse(d.raw.toString('utf8'));
  } catch {
    manifest = null;
  }
  return {
    digest: d.digest,
    mediaType: d.mediaType,
    size: d.size,
    artifactType: d.artifactType,
    configDigest: d.configDigest,
    platforms: platformNames(d.children.map((c) => c.platform)),
    annotations: plain(d.annotations),
    labels: d.labels ? plain(d.labels) : null,
    build: withVerified(buildOf(servers, merged, labelAnnotations, d.referrers?.[0]), d.verifications?.[0]),
    verifications: (d.verifications ?? []).map((v) => ({ repository: v.repository, ...verifiedJson(v) })),
    referrers: (d.referrers ?? []).map((r) => ({ digest: r.digest, created: r.created === '' ? null : r.created, annotations: plain(r.annotations) })),
    children: d.children.map((c) => ({
      digest: c.digest,
      mediaType: c.mediaType,
      size: c.size,
      platform: c.platform ? formatPlatform(c.platform) : null,
      annotations: c.annotations ? plain(c.annotations) : null,
    })),
    parents: d.parents,
    tags: d.tags.map((t) => ({ repository: t.repository, tag: t.tag, updatedAt: t.updatedAt.toISOString() })),
    storedAt: d.storedAt.toISOString(),
    insight,
    pushedBy: d.pusher ? { pusher: d.pusher.pusher, userAgent: d.pusher.userAgent } : null,
    manifest,
  };
}
