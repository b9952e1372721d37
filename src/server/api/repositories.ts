// GET /api/v1/repositories, …/REPOSITORY/tags and …/REPOSITORY/tags/TAG/history. Repository
// names hold slashes, so the path parameter takes everything up to /tags.
import { Hono } from 'hono';
import { NotFoundError, UsageError } from '../../errors.js';
import type { StoreReader } from '../../catalog/store.js';
import { isValidRepository, isValidTag } from '../../oci/reference.js';
import type { GitlabServer } from '../ui/links.js';
import { parseListQuery, parseRepositoryQuery } from '../params.js';
import { imageItem, repositoryItem, tagHistoryItem } from '../views.js';
import { type ApiModule, type ApiParameter, CURSOR_PARAMETER, LIMIT_PARAMETER, type RouteSpec, SIGN_IN_REQUIRED, errorResponse, serve } from './route.js';
import { scoped } from '../auth/viewer.js';
import { ImagePageSchema, RepositoryPageSchema, TagHistorySchema } from './schemas.js';

const repositoryPathParameter: ApiParameter = {
  name: 'repository',
  in: 'path',
  required: true,
  description: 'The repository name, slashes included (group/project/app).',
  schema: { type: 'string' },
};

const LIST_REPOSITORIES: RouteSpec = {
  method: 'get',
  path: '/repositories',
  operationId: 'listRepositories',
  summary: 'Repositories in the catalog, by name.',
  parameters: [{ name: 'q', in: 'query', description: 'Only names containing this text.', schema: { type: 'string', maxLength: 255 } }, LIMIT_PARAMETER, CURSOR_PARAMETER],
  responses: { 200: { description: 'A page of repositories.', json: RepositoryPageSchema }, 400: errorResponse('A bad parameter.'), 401: SIGN_IN_REQUIRED },
};

const LIST_TAGS: RouteSpec = {
  method: 'get',
  path: '/repositories/:repository{.+}/tags',
  operationId: 'listTags',
  summary: 'Live tags of a repository, most recently updated first.',
  parameters: [repositoryPathParameter, LIMIT_PARAMETER, CURSOR_PARAMETER],
  responses: { 200: { description: 'A page of tags.', json: ImagePageSchema }, 400: errorResponse('A bad parameter.'), 401: SIGN_IN_REQUIRED },
};

const TAG_HISTORY: RouteSpec = {
  method: 'get',
  path: '/repositories/:repository{.+}/tags/:tag/history',
  operationId: 'tagHistory',
  summary: 'Every digest a tag pointed at, newest first, 50 a page (nextCursor for older ones); kept after the tag is deleted.',
  parameters: [repositoryPathParameter, { name: 'tag', in: 'path', required: true, schema: { type: 'string' } }, LIMIT_PARAMETER, CURSOR_PARAMETER],
  responses: {
    200: { description: 'The history.', json: TagHistorySchema },
    400: errorResponse('A bad repository or tag.'),
    401: SIGN_IN_REQUIRED,
    404: errorResponse('The catalog has never seen this tag (or, signed in, it is in a repository the person may not read).'),
  },
};

export const REPOSITORIES_API: ApiModule = { base: '/api/v1', routes: [LIST_REPOSITORIES, TAG_HISTORY, LIST_TAGS] };

export function repositoriesApi(store: StoreReader, servers: readonly GitlabServer[]): Hono {
  const app = new Hono();
  serve(app, LIST_REPOSITORIES, async (c) => {
    const page = await store.listRepositories({ ...parseRepositoryQuery(new URL(c.req.url).searchParams), ...scoped(c) });
    return c.json({ items: page.items.map(repositoryItem), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) });
  });
  serve(app, TAG_HISTORY, async (c) => {
    const repository = checkRepositoryPath(c.req.param('repository') ?? '');
    const tag = decodeURIComponent(c.req.param('tag') ?? '');
    if (!isValidTag(tag)) throw new UsageError(`tag ${JSON.stringify(tag.slice(0, 130))} in the path is not a valid tag`);
    const history = await store.tagHistory(repository, tag, { ...parseListQuery(new URL(c.req.url).searchParams), ...scoped(c) });
    if (!history) throw new NotFoundError(`no tag ${repository}:${tag} in the catalog`);
    return c.json(tagHistoryItem(history));
  });
  serve(app, LIST_TAGS, async (c) => {
    const repository = checkRepositoryPath(c.req.param('repository') ?? '');
    const page = await store.listTags(repository, { ...parseListQuery(new URL(c.req.url).searchParams), ...scoped(c) });
    return c.json({ items: page.items.map((i) => imageItem(i, servers)), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) });
  });
  return app;
}

function checkRepositoryPath(raw: string): string {
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    name = raw;
  }
  if (!isValidRepository(name)) throw new UsageError(`repository ${JSON.stringify(name.slice(0, 260))} in the path is not a valid repository name`);
  return name;
}
