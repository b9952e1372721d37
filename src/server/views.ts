// Store records → the JSON the API answers with. `build` is shaped as `tagtrail show` prints it,
// decided by resolveBuild (details/build.ts).
import { type Build, mergeIndexAnnotations, resolveBuild } from '../details/build.js';
import { hasBuildAnnotations, labelsAsAnnotations } from '../details/keys.js';
import { type GitlabServer, checkedBuildLinks } from './ui/links.js';
import type { Annotations } from '../oci/annotations.js';
import { formatPlatform, platformNames } from '../oci/manifest.js';
import type { StoreReader } from '../catalog/store.js';
import type { ImageDetail, ReferrerInfo, RepositorySummary, TagHistory, TagItem } from '../catalog/types.js';

/** The build details as the API gives them: URLs only where the browser would link them (links.ts). */
function buildOf(servers: readonly GitlabServer[], annotations: Annotations, labelAnnotations: Annotations | undefined | null, referrer?: ReferrerInfo): Build | null {
  return checkedBuild(servers, resolveBuild({ annotations, labelAnnotations, referrers: referrer ? [referrer] : [] }));
}

function checkedBuild(servers: readonly GitlabServer[], build: Build | null): Build | null {
  return build === null ? null : checkedBuildLinks(build, servers);
}


function plain(a: Annotations): Record<string, string> {
  return { ...a };
}

export function imageItem(t: TagItem, servers: readonly GitlabServer[]): Record<string, unknown> {
  return {
    repository: t.repository,
    tag: t.tag,
    digest: t.digest,
    mediaType: t.mediaType,
    platforms: platformNames(t.platforms),
    updatedAt: t.updatedAt.toISOString(),
    annotations: plain(t.annotations),
    build: buildOf(servers, t.annotations, t.labelAnnotations, t.referrer),
  };
}

export function repositoryItem(r: RepositorySummary): Record<string, unknown> {
  return {
    name: r.name,
    tagCount: r.tagCount,
    buildTagCount: r.buildTagCount,
    firstSeen: r.firstSeen.toISOString(),
    lastUpdated: r.lastUpdated.toISOString(),
  };
}

export function tagHistoryItem(h: TagHistory): Record<string, unknown> {
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
export async function imageDetail(store: StoreReader, d: ImageDetail, servers: readonly GitlabServer[]): Promise<Record<string, unknown>> {
  const merged = mergeIndexAnnotations(d.annotations, d.children);
  let labelAnnotations: Annotations | undefined;
  if (!hasBuildAnnotations(merged)) {
    if (d.labels) labelAnnotations = labelsAsAnnotations(d.labels);
    // An index has no config: its platform manifests' labels stand in.
    for (const c of d.children) {
      if (labelAnnotations && hasBuildAnnotations(labelAnnotations)) break;
      if (c.annotations === null) continue;
      const child = await store.getImage(c.digest);
      const mapped = child?.labels ? labelsAsAnnotations(child.labels) : undefined;
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
    build: checkedBuild(servers, resolveBuild({ annotations: merged, labelAnnotations, referrers: d.referrers ?? [] })),
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
    manifest,
  };
}
