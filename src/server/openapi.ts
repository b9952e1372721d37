// The OpenAPI 3.1 document served at /api/v1/openapi.json. Written by hand, next to the routes
// it describes (app.ts) and the parameters it names (params.ts); test/server/api.test.ts checks
// that every route is in it.
import { VERSION } from '../version.js';
import { BUILDERS } from '../catalog/builder.js';
import { BUILD_SOURCES, MEDIA_FAMILIES } from '../catalog/derived.js';
import { API_MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE, MAX_INSIGHT_WEEKS } from '../catalog/paging.js';

const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

const limitParam = {
  name: 'limit',
  in: 'query',
  description: `Items per page, 1 to ${API_MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE}).`,
  schema: { type: 'integer', minimum: 1, maximum: API_MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE },
} as const;

const cursorParam = {
  name: 'cursor',
  in: 'query',
  description: 'The nextCursor of the previous page, with the same other parameters.',
  schema: { type: 'string' },
} as const;

const repositoryPathParam = {
  name: 'repository',
  in: 'path',
  required: true,
  description: 'The repository name, slashes included (group/project/app).',
  schema: { type: 'string' },
} as const;

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'tagtrail catalog API',
      version: VERSION,
      description:
        'Search container images by the GitLab CI build details in their OCI annotations (com.gitlab.ci.*, org.opencontainers.image.*), ' +
        'or, for images without them, their config labels. Errors are {"error": {"code", "message"}}; a bad parameter gets 400 and a message naming it. ' +
        'With serve --auth gitlab every call needs a GitLab access token (read_api) as Bearer, or the signed-in session cookie, else 401; ' +
        'each person then sees only the repositories of GitLab projects they can read, and anything else answers as if it were not in the catalog.',
    },
    // None with --auth none; a GitLab token or the session cookie with --auth gitlab.
    security: [{}, { gitlabToken: [] }, { session: [] }],
    paths: {
      '/api/v1/repositories': {
        get: {
          operationId: 'listRepositories',
          summary: 'Repositories in the catalog, by name.',
          parameters: [{ name: 'q', in: 'query', description: 'Only names containing this text.', schema: { type: 'string', maxLength: 255 } }, limitParam, cursorParam],
          responses: {
            200: { description: 'A page of repositories.', content: { 'application/json': { schema: page('#/components/schemas/Repository') } } },
            400: errorResponse('A bad parameter.'),
          },
        },
      },
      '/api/v1/repositories/{repository}/tags': {
        get: {
          operationId: 'listTags',
          summary: 'Live tags of a repository, most recently updated first.',
          parameters: [repositoryPathParam, limitParam, cursorParam],
          responses: {
            200: { description: 'A page of tags.', content: { 'application/json': { schema: page('#/components/schemas/ImageItem') } } },
            400: errorResponse('A bad parameter.'),
          },
        },
      },
      '/api/v1/repositories/{repository}/tags/{tag}/history': {
        get: {
          operationId: 'tagHistory',
          summary: 'Every digest a tag pointed at, newest first; kept after the tag is deleted.',
          parameters: [repositoryPathParam, { name: 'tag', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            200: { description: 'The history.', content: { 'application/json': { schema: { $ref: '#/components/schemas/TagHistory' } } } },
            400: errorResponse('A bad repository or tag.'),
            404: errorResponse('The catalog has never seen this tag.'),
          },
        },
      },
      '/api/v1/images': {
        get: {
          operationId: 'searchImages',
          summary: 'Live tags whose image matches every filter, most recently updated first.',
          parameters: [
            { name: 'repository', in: 'query', description: 'Exact repository name.', schema: { type: 'string' } },
            { name: 'tag', in: 'query', description: 'Exact tag.', schema: { type: 'string' } },
            {
              name: 'annotation',
              in: 'query',
              description: 'KEY=VALUE (the annotation equals VALUE) or KEY (the annotation exists). Repeatable; all must match.',
              schema: { type: 'array', items: { type: 'string' }, maxItems: 20 },
              style: 'form',
              explode: true,
            },
            { name: 'commit', in: 'query', description: 'A commit SHA or a prefix of at least 4 hex digits (com.gitlab.ci.commit_sha or org.opencontainers.image.revision).', schema: { type: 'string', pattern: '^[0-9a-fA-F]{4,64}$' } },
            { name: 'pipeline', in: 'query', description: 'A pipeline ID (com.gitlab.ci.pipeline_id).', schema: { type: 'string', pattern: '^[0-9]{1,20}$' } },
            { name: 'ref', in: 'query', description: 'A branch or tag name (com.gitlab.ci.commit_ref_name).', schema: { type: 'string', maxLength: 255 } },
            limitParam,
            cursorParam,
          ],
          responses: {
            200: { description: 'A page of images.', content: { 'application/json': { schema: page('#/components/schemas/ImageItem') } } },
            400: errorResponse('A bad or unknown parameter; the message names it.'),
          },
        },
      },
      '/api/v1/images/{digest}': {
        get: {
          operationId: 'getImage',
          summary: 'One manifest in detail: its annotations, each child’s (for an index), labels, build details, tags.',
          parameters: [{ name: 'digest', in: 'path', required: true, schema: { type: 'string', pattern: '^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$' } }],
          responses: {
            200: { description: 'The image.', content: { 'application/json': { schema: { $ref: '#/components/schemas/ImageDetail' } } } },
            400: errorResponse('Not a digest.'),
            404: errorResponse('Not in the catalog.'),
          },
        },
      },
      '/api/v1/insights': {
        get: {
          operationId: 'insights',
          summary: 'How images are built, by week: builders, where build details come from, media types, multi-platform images.',
          description:
            'Counts and shares per ISO week (Monday, UTC), overall and per namespace (or, with namespace=, per repository). ' +
            'An image is a manifest a tag pointed at, counted once per repository, in the week a tag of that repository first pointed at it. ' +
            'builders.unread counts images whose builder could not be told without their config, which was not read (see sync --read-configs). ' +
            'format=csv (or GET /api/v1/insights.csv) returns the same figures as CSV, one row per week and scope.',
          parameters: insightsParams(true),
          responses: {
            200: {
              description: 'The report.',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Insights' } }, 'text/csv': { schema: { type: 'string' } } },
            },
            400: errorResponse('A bad or unknown parameter; the message names it.'),
          },
        },
      },
      '/api/v1/insights.csv': {
        get: {
          operationId: 'insightsCsv',
          summary: 'The insights report as CSV (RFC 4180, a header row; cells that a spreadsheet would read as formulas start with an apostrophe).',
          parameters: insightsParams(false),
          responses: {
            200: { description: 'CSV, as an attachment.', content: { 'text/csv': { schema: { type: 'string' } } } },
            400: errorResponse('A bad or unknown parameter; the message names it.'),
          },
        },
      },
      '/api/v1/events': {
        post: {
          operationId: 'registryEvents',
          summary: 'Registry notifications (CNCF distribution and GitLab container registry).',
          description:
            'Takes a notification envelope. Authenticated by the shared secret in the Authorization header, bare or as "Bearer SECRET". ' +
            'Tag pushes, tag deletes and manifest deletes change the catalog; other events are ignored. Idempotent. ' +
            "An event's target.url is never fetched: manifests are read from tagtrail's configured registry.",
          security: [{ webhookSecret: [] }, { webhookBearer: [] }],
          requestBody: {
            required: true,
            content: { 'application/vnd.docker.distribution.events.v1+json': { schema: { $ref: '#/components/schemas/Envelope' } }, 'application/json': { schema: { $ref: '#/components/schemas/Envelope' } } },
          },
          responses: {
            200: {
              description: 'Applied.',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      events: { type: 'integer' },
                      ignored: { type: 'integer' },
                      applied: { type: 'integer' },
                      superseded: { type: 'integer', description: 'Older than what the catalog already has: kept for history only.' },
                      duplicate: { type: 'integer' },
                      unreadable: { type: 'integer', description: 'Tag pushes whose manifest could not be read; the tag was recorded.' },
                    },
                  },
                },
              },
            },
            400: errorResponse('Not a valid envelope; nothing was stored.'),
            401: errorResponse('Missing or wrong secret.'),
            404: errorResponse('The webhook is off (serve runs without a secret).'),
            413: errorResponse('The body is over the size limit.'),
            502: errorResponse('The registry could not be read; the registry sends the event again.'),
          },
        },
      },
      '/api/v1/openapi.json': { get: { operationId: 'openapi', summary: 'This document.', responses: { 200: { description: 'OpenAPI 3.1.' } } } },
      '/healthz': { get: { operationId: 'healthz', summary: 'Liveness: the process answers.', responses: { 200: { description: 'Alive.' } } } },
      '/readyz': {
        get: {
          operationId: 'readyz',
          summary: 'Readiness: the catalog database answers and the server is not shutting down.',
          responses: { 200: { description: 'Ready.' }, 503: { description: 'Not ready.' } },
        },
      },
      '/metrics': { get: { operationId: 'metrics', summary: 'Prometheus metrics.', responses: { 200: { description: 'Text exposition format.', content: { 'text/plain': {} } } } } },
    },
    components: {
      securitySchemes: {
        webhookSecret: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'The secret itself, as GitLab and distribution send it.' },
        webhookBearer: { type: 'http', scheme: 'bearer' },
        gitlabToken: { type: 'http', scheme: 'bearer', description: 'A GitLab personal, project or group access token with read_api (serve --auth gitlab).' },
        session: { type: 'apiKey', in: 'cookie', name: 'tagtrail_session', description: 'The signed-in session (__Host-tagtrail_session over https).' },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
        },
        Repository: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            tagCount: { type: 'integer' },
            buildTagCount: { type: 'integer', description: 'Live tags whose image carries build details.' },
            firstSeen: { type: 'string', format: 'date-time' },
            lastUpdated: { type: 'string', format: 'date-time' },
          },
        },
        Build: {
          type: ['object', 'null'],
          description: 'As `tagtrail show -o json` prints it; null when the image carries no build details.',
          properties: {
            source: { enum: ['annotations', 'referrer', 'labels'], description: 'The manifest annotations, else a build-details referrer (tagtrail attach), else the config labels.' },
            referrer: { type: 'string', description: 'The digest of the referrer manifest the details come from, when source is referrer.' },
            pipeline: { type: 'object', properties: { id: { type: 'string' }, url: { type: 'string' } } },
            job: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, url: { type: 'string' } } },
            commit: { type: 'object', properties: { sha: { type: 'string' }, url: { type: 'string' } } },
            ref: { type: 'object', properties: { name: { type: 'string' }, kind: { enum: ['branch', 'tag', 'merge_request', 'unknown'] }, url: { type: 'string' } } },
            mergeRequest: { type: 'object', properties: { iid: { type: 'string' }, url: { type: 'string' } } },
            project: { type: 'object', properties: { path: { type: 'string' }, url: { type: 'string' } } },
            user: { type: 'object', properties: { id: { type: 'string' }, login: { type: 'string' } } },
          },
        },
        ImageItem: {
          type: 'object',
          properties: {
            repository: { type: 'string' },
            tag: { type: 'string' },
            digest: { type: 'string' },
            mediaType: { type: ['string', 'null'], description: 'null while the manifest is not in the catalog.' },
            platforms: { type: 'array', items: { type: 'string' }, description: 'For an index: os/architecture[/variant] of each platform manifest.' },
            updatedAt: { type: 'string', format: 'date-time' },
            annotations: { ...stringMap, description: "The manifest's annotations, then each child's (the first value of a key wins)." },
            build: { $ref: '#/components/schemas/Build' },
          },
        },
        ImageDetail: {
          type: 'object',
          properties: {
            digest: { type: 'string' },
            mediaType: { type: 'string' },
            size: { type: 'integer' },
            artifactType: { type: ['string', 'null'] },
            configDigest: { type: ['string', 'null'] },
            platforms: { type: 'array', items: { type: 'string' } },
            annotations: { ...stringMap, description: "This manifest's own annotations." },
            labels: { type: ['object', 'null'], additionalProperties: { type: 'string' }, description: 'Config labels, when they were read (only for images without build annotations).' },
            build: { $ref: '#/components/schemas/Build' },
            children: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  digest: { type: 'string' },
                  mediaType: { type: ['string', 'null'] },
                  size: { type: ['integer', 'null'] },
                  platform: { type: ['string', 'null'] },
                  annotations: { type: ['object', 'null'], additionalProperties: { type: 'string' }, description: 'null when the child is not in the catalog (e.g. an attestation).' },
                },
              },
            },
            parents: { type: 'array', items: { type: 'string' }, description: 'Indexes that list this manifest.' },
            tags: { type: 'array', items: { type: 'object', properties: { repository: { type: 'string' }, tag: { type: 'string' }, updatedAt: { type: 'string', format: 'date-time' } } } },
            storedAt: { type: 'string', format: 'date-time' },
            referrers: {
              type: 'array',
              description: 'Build-details referrers (tagtrail attach) the catalog found for this digest through the referrers tag, newest first.',
              items: {
                type: 'object',
                properties: { digest: { type: 'string' }, created: { type: ['string', 'null'] }, annotations: stringMap },
              },
            },
            insight: {
              type: ['object', 'null'],
              description: 'How this manifest was built, as the insights count it (docs/insights.md): the builder, the signals that matched, where its build details come from.',
              properties: {
                builder: { enum: [...BUILDERS] },
                confidence: { enum: ['high', 'medium', 'low', 'none'] },
                evidence: { type: 'array', items: { type: 'string' } },
                buildSource: { enum: [...BUILD_SOURCES] },
                mediaFamily: { enum: [...MEDIA_FAMILIES] },
                platformCount: { type: 'integer' },
              },
            },
            manifest: { type: 'object', description: 'The manifest JSON as the registry served it.' },
          },
        },
        TagHistory: {
          type: 'object',
          properties: {
            repository: { type: 'string' },
            tag: { type: 'string' },
            digest: { type: ['string', 'null'], description: 'null when the tag is deleted.' },
            deleted: { type: 'boolean' },
            deletedAt: { type: ['string', 'null'], format: 'date-time' },
            updatedAt: { type: 'string', format: 'date-time' },
            firstSeen: { type: ['string', 'null'], format: 'date-time' },
            entries: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  digest: { type: 'string' },
                  since: { type: 'string', format: 'date-time' },
                  until: { type: ['string', 'null'], format: 'date-time' },
                  end: { type: ['string', 'null'], enum: ['replaced', 'deleted', null] },
                },
              },
            },
          },
        },
        InsightsCounts: {
          type: 'object',
          properties: {
            images: { type: 'integer' },
            builders: { type: 'object', properties: Object.fromEntries(BUILDERS.map((b) => [b, { type: 'integer' }])) },
            buildSources: { type: 'object', properties: Object.fromEntries(BUILD_SOURCES.map((b) => [b, { type: 'integer' }])) },
            mediaTypes: { type: 'object', properties: Object.fromEntries(MEDIA_FAMILIES.map((b) => [b, { type: 'integer' }])) },
            multiPlatform: { type: 'integer', description: 'Indexes of more than one platform (attestations not counted).' },
            shares: { type: 'object', description: 'The same counts as fractions of images (0 to 1, four decimals), and withBuildDetails.' },
          },
        },
        Insights: {
          type: 'object',
          properties: {
            interval: { const: 'week' },
            from: { type: 'string', format: 'date', description: 'Monday of the first week.' },
            to: { type: 'string', format: 'date', description: 'Monday after the last week.' },
            namespace: { type: ['string', 'null'] },
            repository: { type: ['string', 'null'] },
            groupBy: { enum: ['namespace', 'repository'] },
            basis: { type: 'string', description: 'What an image is and when it counts.' },
            totals: { $ref: '#/components/schemas/InsightsCounts' },
            weeks: { type: 'array', items: { allOf: [{ $ref: '#/components/schemas/InsightsCounts' }, { type: 'object', properties: { week: { type: 'string', format: 'date' } } }] } },
            groups: {
              type: 'array',
              items: { type: 'object', properties: { name: { type: 'string' }, totals: { $ref: '#/components/schemas/InsightsCounts' }, weeks: { type: 'array', items: { type: 'object' } } } },
            },
            platforms: { type: 'array', items: { type: 'object', properties: { platform: { type: 'string' }, images: { type: 'integer' } } } },
          },
        },
        Envelope: {
          type: 'object',
          required: ['events'],
          properties: {
            events: {
              type: 'array',
              items: {
                type: 'object',
                required: ['action'],
                properties: {
                  id: { type: 'string' },
                  timestamp: { type: 'string', format: 'date-time' },
                  action: { type: 'string', description: 'push, delete (others are ignored)' },
                  target: {
                    type: 'object',
                    properties: { mediaType: { type: 'string' }, digest: { type: 'string' }, repository: { type: 'string' }, tag: { type: 'string' }, url: { type: 'string', description: 'Ignored.' } },
                  },
                },
              },
            },
          },
        },
      },
    },
  };
}

function insightsParams(withFormat: boolean): Record<string, unknown>[] {
  return [
    { name: 'namespace', in: 'query', description: 'Only repositories whose first path segment is this; groups become repositories.', schema: { type: 'string' } },
    { name: 'repository', in: 'query', description: 'Only this repository.', schema: { type: 'string' } },
    { name: 'from', in: 'query', description: `YYYY-MM-DD or RFC 3339; from the Monday of its week. Default: 52 weeks before to. At most ${MAX_INSIGHT_WEEKS} weeks before to.`, schema: { type: 'string' } },
    { name: 'to', in: 'query', description: 'YYYY-MM-DD or RFC 3339; up to the end of its week. Default: now.', schema: { type: 'string' } },
    { name: 'interval', in: 'query', description: 'Only week.', schema: { enum: ['week'], default: 'week' } },
    ...(withFormat ? [{ name: 'format', in: 'query', description: 'json (default) or csv.', schema: { enum: ['json', 'csv'], default: 'json' } }] : []),
  ];
}

function page(itemRef: string): Record<string, unknown> {
  return {
    type: 'object',
    required: ['items'],
    properties: { items: { type: 'array', items: { $ref: itemRef } }, nextCursor: { type: 'string', description: 'Absent on the last page.' } },
  };
}
