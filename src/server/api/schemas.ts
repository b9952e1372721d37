// The JSON the API answers with, as zod schemas: the views (views.ts, insights.ts) build these
// shapes, the OpenAPI document is generated from them (openapi.ts), and the API tests parse every
// body they get with them. Objects are strict, so a field the schema does not name fails a test.
import { z } from 'zod';
import { BUILDERS } from '../../catalog/builder.js';
import { BUILD_SOURCES, MEDIA_FAMILIES } from '../../catalog/derived.js';

/** Schemas with a name: each becomes #/components/schemas/NAME in the document. */
export const apiSchemas = z.registry<{ id: string }>();

function named<T extends z.ZodType>(id: string, schema: T): T {
  apiSchemas.add(schema, { id });
  return schema;
}

const dateTime = z.iso.datetime();
const day = z.iso.date();
const stringMap = z.record(z.string(), z.string());
const count = z.number().int().nonnegative();

export const ErrorSchema = named(
  'Error',
  z.strictObject({ error: z.strictObject({ code: z.string(), message: z.string() }) }).meta({ description: 'Every error: a stable code and a sentence naming the problem.' }),
);

export const VerifiedSchema = named(
  'Verified',
  z
    .strictObject({
      by: z.string().meta({ description: 'How: gitlab-id-token.' }),
      issuer: z.string(),
      projectPath: z.string(),
      pipelineId: z.string(),
      jobId: z.string(),
      sha: z.string(),
      ref: z.string(),
      at: dateTime,
    })
    .meta({ description: 'A build report for this repository and digest, checked against a GitLab CI ID token (docs/gitlab.md).' }),
);

export const BuildSchema = named(
  'Build',
  z
    .strictObject({
      source: z.enum(['annotations', 'referrer', 'labels']).meta({ description: 'The manifest annotations, else a build-details referrer (tagtrail attach), else the config labels.' }),
      referrer: z.string().optional().meta({ description: 'The digest of the referrer manifest the details come from, when source is referrer.' }),
      pipeline: z.strictObject({ id: z.string(), url: z.string().optional() }).optional(),
      job: z.strictObject({ id: z.string().optional(), name: z.string().optional(), url: z.string().optional() }).optional(),
      commit: z.strictObject({ sha: z.string(), url: z.string().optional() }).optional(),
      ref: z.strictObject({ name: z.string(), kind: z.enum(['branch', 'tag', 'merge_request', 'unknown']), url: z.string().optional() }).optional(),
      mergeRequest: z.strictObject({ iid: z.string(), url: z.string().optional() }).optional(),
      project: z.strictObject({ path: z.string().optional(), url: z.string().optional() }).optional(),
      user: z.strictObject({ id: z.string().optional(), login: z.string().optional() }).optional(),
      verified: VerifiedSchema.optional().meta({ description: 'Present only when GitLab verified a build report of this image.' }),
    })
    .nullable()
    .meta({ description: 'As `tagtrail show -o json` prints it; null when the image carries no build details.' }),
);

export const RepositorySchema = named(
  'Repository',
  z.strictObject({
    name: z.string(),
    tagCount: count,
    buildTagCount: count.meta({ description: 'Live tags whose image carries build details.' }),
    firstSeen: dateTime,
    lastUpdated: dateTime,
  }),
);

export const ImageItemSchema = named(
  'ImageItem',
  z.strictObject({
    repository: z.string(),
    tag: z.string(),
    digest: z.string(),
    mediaType: z.string().nullable().meta({ description: 'null while the manifest is not in the catalog.' }),
    platforms: z.array(z.string()).meta({ description: 'For an index: os/architecture[/variant] of each platform manifest.' }),
    updatedAt: dateTime,
    annotations: stringMap.meta({ description: "The manifest's annotations, then each child's (the first value of a key wins)." }),
    build: BuildSchema,
  }),
);

function page<T extends z.ZodType>(id: string, item: T) {
  return named(id, z.strictObject({ items: z.array(item), nextCursor: z.string().optional().meta({ description: 'Absent on the last page: pass it as cursor for the next one.' }) }));
}

export const RepositoryPageSchema = page('RepositoryPage', RepositorySchema);
export const ImagePageSchema = page('ImagePage', ImageItemSchema);

export const ManifestInsightSchema = named(
  'ManifestInsight',
  z
    .strictObject({
      builder: z.enum(BUILDERS),
      confidence: z.enum(['high', 'medium', 'low', 'none']),
      evidence: z.array(z.string()),
      buildSource: z.enum(BUILD_SOURCES),
      mediaFamily: z.enum(MEDIA_FAMILIES),
      platformCount: count,
    })
    .meta({ description: 'How this manifest was built, as the insights count it (docs/insights.md): the builder, the signals that matched, where its build details come from.' }),
);

export const ImageDetailSchema = named(
  'ImageDetail',
  z.strictObject({
    digest: z.string(),
    mediaType: z.string(),
    size: count,
    artifactType: z.string().nullable(),
    configDigest: z.string().nullable(),
    platforms: z.array(z.string()),
    annotations: stringMap.meta({ description: "This manifest's own annotations." }),
    labels: stringMap.nullable().meta({ description: 'Config labels, when they were read.' }),
    build: BuildSchema,
    referrers: z
      .array(z.strictObject({ digest: z.string(), created: z.string().nullable(), annotations: stringMap }))
      .meta({ description: 'Build-details referrers (tagtrail attach) the catalog found for this digest through the referrers tag, newest first.' }),
    children: z.array(
      z.strictObject({
        digest: z.string(),
        mediaType: z.string().nullable(),
        size: count.nullable(),
        platform: z.string().nullable(),
        annotations: stringMap.nullable().meta({ description: 'null when the child is not in the catalog (e.g. an attestation).' }),
      }),
    ),
    parents: z.array(z.string()).meta({ description: 'Indexes that list this manifest.' }),
    tags: z.array(z.strictObject({ repository: z.string(), tag: z.string(), updatedAt: dateTime })),
    storedAt: dateTime,
    insight: ManifestInsightSchema.nullable(),
    verifications: z.array(VerifiedSchema.extend({ repository: z.string() })).meta({ description: 'Every verified build report of this digest, by repository, newest first.' }),
    pushedBy: z
      .strictObject({ pusher: z.string(), userAgent: z.string() })
      .nullable()
      .meta({ description: 'The tool that pushed the manifest, from the User-Agent of the registry notification.' }),
    manifest: z.unknown().meta({ description: 'The manifest JSON as the registry served it; null when it is not JSON.' }),
  }),
);

export const TagHistorySchema = named(
  'TagHistory',
  z.strictObject({
    repository: z.string(),
    tag: z.string(),
    digest: z.string().nullable().meta({ description: 'null when the tag is deleted.' }),
    deleted: z.boolean(),
    deletedAt: dateTime.nullable(),
    updatedAt: dateTime,
    firstSeen: dateTime.nullable(),
    entries: z.array(z.strictObject({ digest: z.string(), since: dateTime, until: dateTime.nullable(), end: z.enum(['replaced', 'deleted']).nullable() })),
    nextCursor: z.string().optional().meta({ description: 'Present when older entries follow: pass it as cursor.' }),
  }),
);

const countsOf = <const T extends readonly string[]>(keys: T) => z.strictObject(Object.fromEntries(keys.map((k) => [k, count])) as Record<T[number], typeof count>);
const sharesOf = <const T extends readonly string[]>(keys: T) => z.strictObject(Object.fromEntries(keys.map((k) => [k, z.number().min(0).max(1)])) as Record<T[number], z.ZodNumber>);

export const InsightsCountsSchema = named(
  'InsightsCounts',
  z.strictObject({
    images: count,
    builders: countsOf(BUILDERS),
    buildSources: countsOf(BUILD_SOURCES),
    mediaTypes: countsOf(MEDIA_FAMILIES),
    multiPlatform: count.meta({ description: 'Indexes of more than one platform (attestations not counted).' }),
    shares: z
      .strictObject({
        builders: sharesOf(BUILDERS),
        buildSources: sharesOf(BUILD_SOURCES),
        withBuildDetails: z.number().min(0).max(1),
        mediaTypes: sharesOf(MEDIA_FAMILIES),
        multiPlatform: z.number().min(0).max(1),
      })
      .meta({ description: 'The same counts as fractions of images (0 to 1, four decimals), and withBuildDetails.' }),
  }),
);

const WeekCountsSchema = named('InsightsWeek', InsightsCountsSchema.extend({ week: day.meta({ description: 'Monday of the week.' }) }));

export const InsightsSchema = named(
  'Insights',
  z.strictObject({
    interval: z.literal('week'),
    from: day.meta({ description: 'Monday of the first week.' }),
    to: day.meta({ description: 'Monday after the last week.' }),
    namespace: z.string().nullable(),
    repository: z.string().nullable(),
    groupBy: z.enum(['namespace', 'repository']),
    basis: z.string().meta({ description: 'What an image is and when it counts.' }),
    totals: InsightsCountsSchema,
    weeks: z.array(WeekCountsSchema),
    groups: z.array(z.strictObject({ name: z.string(), totals: InsightsCountsSchema, weeks: z.array(WeekCountsSchema) })),
    platforms: z.array(z.strictObject({ platform: z.string(), images: count })),
    verified: count.meta({ description: 'Images whose build report GitLab verified.' }),
    pushedBy: z.record(z.string(), count).meta({ description: 'Images by the tool that pushed them (registry notifications).' }),
  }),
);

export const EventsResultSchema = named(
  'EventsResult',
  z.strictObject({
    events: count,
    ignored: count,
    applied: count,
    superseded: count.meta({ description: 'Older than what the catalog already has: kept for history only.' }),
    duplicate: count,
    unreadable: count.meta({ description: 'Tag pushes whose manifest could not be read; the tag was recorded.' }),
    missing: count.meta({ description: 'Tag pushes of a digest the registry does not have in that repository: nothing was recorded.' }),
    clamped: count.meta({ description: 'Events dated more than 5 minutes after their receipt: recorded at their receipt.' }),
  }),
);

/** The request body of POST /api/v1/events (documented only: events.ts parses it). */
export const EnvelopeSchema = named(
  'Envelope',
  z.object({
    events: z.array(
      z.object({
        id: z.string().optional(),
        timestamp: dateTime.optional(),
        action: z.string().meta({ description: 'push, delete (others are ignored)' }),
        target: z
          .object({ mediaType: z.string().optional(), digest: z.string().optional(), repository: z.string().optional(), tag: z.string().optional(), url: z.string().optional().meta({ description: 'Ignored.' }) })
          .optional(),
      }),
    ),
  }),
);

export const BuildReportSchema = named(
  'BuildReport',
  z.strictObject({
    images: z.array(z.strictObject({ image: z.string(), digest: z.string(), referrer: z.string().optional(), accepted: z.boolean() })),
    verified: VerifiedSchema,
  }),
);

export const BuildReportMismatchSchema = named(
  'BuildReportMismatch',
  z.strictObject({
    error: z.strictObject({ code: z.string(), message: z.string() }),
    images: z.array(z.strictObject({ image: z.string(), problems: z.array(z.string()) })),
  }),
);

export const GitlabEventResultSchema = named(
  'GitlabEventResult',
  z
    .strictObject({
      ignored: z.boolean().optional(),
      event: z.string().optional(),
      queued: z.boolean().optional(),
      project: z.string().optional(),
      status: z.string().nullable().optional(),
    })
    .meta({ description: 'queued: a crawl of the project is queued; ignored: another kind of event.' }),
);

export const HealthSchema = named('Health', z.strictObject({ status: z.string() }));

/** The document itself: checked in full by an OpenAPI validator in the tests. */
export const OpenApiSchema = named('OpenApiDocument', z.looseObject({ openapi: z.literal('3.1.0'), info: z.looseObject({}), paths: z.record(z.string(), z.unknown()) }));
