// GET /api/v1/images (search), /api/v1/images/DIGEST (one manifest in detail) and
// /api/v1/images/DIGEST/manifest (its bytes as stored).
import { Hono } from 'hono';
import { NotFoundError, UsageError } from '../../errors.js';
import type { StoreReader } from '../../catalog/store.js';
import { isValidDigest, isValidRepository } from '../../oci/reference.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../../oci/mediatypes.js';
import type { GitlabServer } from '../ui/links.js';
import { parseImageQuery } from '../params.js';
import { imageDetail, imageItem } from '../views.js';
import { type ApiModule, CURSOR_PARAMETER, DIGEST_PATH_PARAMETER, LIMIT_PARAMETER, type RouteSpec, SIGN_IN_REQUIRED, errorResponse, serve } from './route.js';
import { scoped } from '../auth/viewer.js';
import { ImageDetailSchema, ImagePageSchema } from './schemas.js';

/** Media types the raw manifest endpoint declares as they are; any other is served as bytes. */
const MANIFEST_MEDIA_TYPES = new Set([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, 'application/vnd.docker.distribution.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws']);

const SEARCH_IMAGES: RouteSpec = {
  method: 'get',
  path: '/images',
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
    { name: 'verified', in: 'query', description: 'true: only images whose build report GitLab verified (build.verified); not with annotation=.', schema: { type: 'string', enum: ['true', 'false'] } },
    LIMIT_PARAMETER,
    CURSOR_PARAMETER,
  ],
  responses: { 200: { description: 'A page of images.', json: ImagePageSchema }, 400: errorResponse('A bad or unknown parameter; the message names it.'), 401: SIGN_IN_REQUIRED },
};

const GET_IMAGE: RouteSpec = {
  method: 'get',
  path: '/images/:digest',
  operationId: 'getImage',
  summary: 'One manifest in detail: its annotations, each child’s (for an index), labels, build details, tags.',
  parameters: [
    DIGEST_PATH_PARAMETER,
    {
      name: 'repository',
      in: 'query',
      required: false,
      description: 'Referrers (and build details from them) as this repository lists them; without it, as the repositories that tag the digest list them.',
      schema: { type: 'string' },
    },
  ],
  responses: {
    200: { description: 'The image.', json: ImageDetailSchema },
    400: errorResponse('Not a digest.'),
    401: SIGN_IN_REQUIRED,
    404: errorResponse('Not in the catalog (or, signed in, not tagged in a repository the person may read).'),
  },
};

const GET_RAW_MANIFEST: RouteSpec = {
  method: 'get',
  path: '/images/:digest/manifest',
  operationId: 'getRawManifest',
  summary: 'The manifest’s bytes exactly as stored, with its media type (an unknown one is served as application/octet-stream).',
  parameters: [DIGEST_PATH_PARAMETER],
  responses: {
    200: { description: 'The manifest.', content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
    400: errorResponse('Not a digest.'),
    401: SIGN_IN_REQUIRED,
    404: errorResponse('Not in the catalog (or, signed in, not tagged in a repository the person may read).'),
  },
};

export const IMAGES_API: ApiModule = { base: '/api/v1', routes: [SEARCH_IMAGES, GET_IMAGE, GET_RAW_MANIFEST] };

function checkDigest(digest: string): void {
  if (!isValidDigest(digest)) throw new UsageError(`digest ${JSON.stringify(digest.slice(0, 140))} in the path is not sha256:<64 hex> or sha512:<128 hex>`);
}

export function imagesApi(store: StoreReader, servers: readonly GitlabServer[]): Hono {
  const app = new Hono();
  serve(app, SEARCH_IMAGES, async (c) => {
    const page = await store.searchImages({ ...parseImageQuery(new URL(c.req.url).searchParams), ...scoped(c) });
    return c.json({ items: page.items.map((i) => imageItem(i, servers)), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) });
  });
  serve(app, GET_IMAGE, async (c) => {
    const digest = c.req.param('digest') ?? '';
    checkDigest(digest);
    // ?repository=NAME: the build details as that repository lists them (its referrers only).
    const repository = c.req.query('repository');
    if (repository !== undefined && !isValidRepository(repository)) throw new UsageError(`repository ${JSON.stringify(repository.slice(0, 260))} is not a valid repository name`);
    const detail = await store.getImage(digest, { ...(repository !== undefined ? { repository } : {}), ...scoped(c) });
    if (!detail) throw new NotFoundError(`no image ${digest} in the catalog`);
    return c.json(await imageDetail(store, detail, servers));
  });
  // The manifest's bytes exactly as stored (the pages show at most 256 KiB of them). Only a
  // manifest media type is declared: the stored one came from whoever pushed the image.
  serve(app, GET_RAW_MANIFEST, async (c) => {
    const digest = c.req.param('digest') ?? '';
    checkDigest(digest);
    const detail = await store.getImage(digest, scoped(c));
    if (!detail) throw new NotFoundError(`no image ${digest} in the catalog`);
    const type = MANIFEST_MEDIA_TYPES.has(detail.mediaType) ? detail.mediaType : 'application/octet-stream';
    return c.body(new Uint8Array(detail.raw), 200, {
      'content-type': type,
      'docker-content-digest': digest,
      'content-security-policy': "default-src 'none'; sandbox",
      // private: under sign-in a shared cache must not hand one person's readable manifest to another.
      'cache-control': 'private, max-age=31536000, immutable',
    });
  });
  return app;
}
