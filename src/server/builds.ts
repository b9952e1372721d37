// POST /api/v1/builds: a build report from a GitLab CI job (tagtrail annotate/attach --report),
// authenticated by the job's ID token. Serve checks the token (id-token.ts: 401 when it fails,
// before anything is fetched or read), then that the report agrees with the token and with the
// registry (422 naming what disagrees), and only then records the images as verified.
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { AuthError, DigestMismatchError, InvalidInputError, NotFoundError, UsageError, httpStatusFor, isTagtrailError } from '../errors.js';
import { Ingestor } from '../catalog/ingest.js';
import type { Store } from '../catalog/store.js';
import type { VerifiedBuild } from '../catalog/sql/verifications.js';
import { CI } from '../gitlab/ci.js';
import { type Annotations, OCI_PREFIX as OCI } from '../oci/annotations.js';
import type { IdTokenClaims, IdTokenVerifier } from '../gitlab/id-token.js';
import type { Manifest } from '../oci/manifest.js';
import { type Reference, isValidDigest, parseReference } from '../oci/reference.js';
import { referrersTag } from '../oci/referrers.js';
import type { RegistryClient } from '../oci/registry.js';
import { readBodyText } from './webhook.js';
import { type ApiModule, type RouteSpec, errorResponse, serve } from './api/route.js';
import { BuildReportMismatchSchema, BuildReportSchema } from './api/schemas.js';

const BUILD_REPORT: RouteSpec = {
  method: 'post',
  path: '/builds',
  operationId: 'buildReport',
  summary: 'A build report from a GitLab CI job (tagtrail annotate/attach --report), verified against its ID token.',
  description:
    'Authorization: Bearer <GitLab ID token>, RS256, issued by one of --gitlab-url, with aud the public URL of serve. ' +
    'Body: {"images": [{"image": "REGISTRY/REPOSITORY:TAG", "digest": "sha256:…", "referrer": "sha256:…"}]}. ' +
    "Each repository must be the token's project_path or under it; each manifest (or, with referrer, the referrer) must carry the token's pipeline, commit and ref, and a job id " +
    "(another job of the same pipeline is accepted: a retried job reports an image the first job wrote; the token's job is recorded). " +
    'Only on with --public-url (TAGTRAIL_PUBLIC_URL).',
  security: [{ idToken: [] }],
  requestBody: {
    required: true,
    content: {
      'application/json': {
        schema: {
          type: 'object',
          required: ['images'],
          properties: { images: { type: 'array', items: { type: 'object', required: ['image', 'digest'], properties: { image: { type: 'string' }, digest: { type: 'string' }, referrer: { type: 'string' } } } } },
        },
      },
    },
  },
  responses: {
    200: { description: 'Verified and recorded.', json: BuildReportSchema },
    400: errorResponse('Not a valid report; nothing was recorded.'),
    401: errorResponse('Bad signature, another issuer, wrong audience or expired: nothing fetched, nothing recorded.'),
    404: errorResponse('Build reports are off (serve runs without --public-url).'),
    413: errorResponse('The body is over the size limit.'),
    422: { description: 'A claim disagrees with the report or the registry, or the digest is unknown; the message names what.', json: BuildReportMismatchSchema },
    502: errorResponse('The registry failed while the report was read; nothing was recorded.'),
  },
};

export const BUILDS_API: ApiModule = { base: '/api/v1', routes: [BUILD_REPORT] };

export interface BuildReportOptions {
  verifier: IdTokenVerifier;
  client: RegistryClient;
  /** host[:port] of the registry serve reads: a report about another registry is refused. */
  registry: string;
  now: () => Date;
  /** Largest body accepted (as for the registry webhook). */
  maxBodyBytes: number;
  logger?: Logger;
}

/** A report names at most this many images. */
const MAX_IMAGES = 100;

interface ReportedImage {
  image: string;
  ref: Reference;
  digest: string;
  referrer?: string;
}

function parseReport(text: string): ReportedImage[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new UsageError('the report is not JSON', { hint: 'send {"images": [{"image": "REGISTRY/REPOSITORY:TAG", "digest": "sha256:…"}]}' });
  }
  const images = (body as { images?: unknown } | null)?.images;
  if (!Array.isArray(images) || images.length === 0 || images.length > MAX_IMAGES) {
    throw new UsageError(`the report must list 1 to ${MAX_IMAGES} images under "images"`);
  }
  return images.map((raw, i) => {
    const item = raw as { image?: unknown; digest?: unknown; referrer?: unknown } | null;
    if (typeof item?.image !== 'string' || typeof item.digest !== 'string' || !isValidDigest(item.digest)) {
      throw new UsageError(`images[${i}] needs "image" (REGISTRY/REPOSITORY:TAG) and "digest" (sha256:…)`);
    }
    if (item.referrer !== undefined && (typeof item.referrer !== 'string' || !isValidDigest(item.referrer))) throw new UsageError(`images[${i}].referrer is not a digest`);
    const ref = parseReference(item.image);
    return { image: item.image, ref, digest: item.digest, ...(typeof item.referrer === 'string' ? { referrer: item.referrer } : {}) };
  });
}

/** The repository is the token's project, or lies under it (GitLab's registry naming). */
function inProject(repository: string, projectPath: string): boolean {
  const p = projectPath.toLowerCase();
  return repository === p || repository.startsWith(`${p}/`);
}

/** What in the annotations disagrees with the token's pipeline, job, commit and ref. */
function claimMismatches(a: Annotations, claims: IdTokenClaims): string[] {
  const problems: string[] = [];
  const check = (what: string, key: string, want: string, normalize: (s: string) => string = (s) => s): void => {
    const have = a[key];
    if (have === undefined) problems.push(`${what}: the annotation ${key} is missing (the token says ${want})`);
    else if (normalize(have) !== normalize(want)) problems.push(`${what}: ${key} is ${JSON.stringify(have.slice(0, 100))}, the token says ${JSON.stringify(want)}`);
  };
  check('pipeline', `${CI}pipeline_id`, claims.pipelineId);
  const shaKey = a[`${CI}commit_sha`] !== undefined ? `${CI}commit_sha` : `${OCI}revision`;
  check('commit', shaKey, claims.sha, (s) => s.toLowerCase());
  check('ref', `${CI}commit_ref_name`, claims.ref);
  // A retried job writes nothing (build-once.ts), so the image keeps the first job's job_id while
  // the retry reports with its own token: another job of the same pipeline, commit and ref is
  // accepted (the token's job is recorded). The job must still be named.
  if (problems.length > 0 || a[`${CI}job_id`] === undefined) check('job', `${CI}job_id`, claims.jobId);
  return problems;
}

async function readByDigest(client: RegistryClient, ref: Reference, digest: string, what: string, problems: string[]): Promise<Manifest | undefined> {
  try {
    // getManifest checks that the bytes hash to the digest asked for.
    return await client.getManifest({ registry: ref.registry, repository: ref.repository, digest });
  } catch (err) {
    if (err instanceof NotFoundError) problems.push(`${what} ${digest} is not in ${ref.repository} on the registry`);
    else if (err instanceof DigestMismatchError) problems.push(`${what} ${digest}: the registry's bytes do not hash to it`);
    else if (err instanceof InvalidInputError) problems.push(`${what} ${digest} is not a manifest tagtrail can read`);
    else throw err;
    return undefined;
  }
}

/** Every check of one image; the problems found (empty: it passes). */
async function checkImage(o: BuildReportOptions, claims: IdTokenClaims, r: ReportedImage): Promise<string[]> {
  const problems: string[] = [];
  if (r.ref.registry !== o.registry) problems.push(`the registry ${r.ref.registry} is not the one this catalog reads (${o.registry})`);
  if (!inProject(r.ref.repository, claims.projectPath)) problems.push(`the repository ${r.ref.repository} is not the token's project_path ${claims.projectPath} or under it`);
  if (r.ref.digest !== undefined && r.ref.digest !== r.digest) problems.push(`the image names ${r.ref.digest}, the report says ${r.digest}`);
  if (problems.length > 0) return problems;
  const image = await readByDigest(o.client, r.ref, r.digest, 'the digest', problems);
  if (!image) return problems;
  if (r.referrer === undefined) return claimMismatches(image.annotations, claims);
  const referrer = await readByDigest(o.client, r.ref, r.referrer, 'the referrer', problems);
  if (!referrer) return problems;
  const subject = (referrer.json.subject as { digest?: unknown } | undefined)?.digest;
  if (subject !== r.digest) problems.push(`the referrer ${r.referrer} names the subject ${typeof subject === 'string' ? subject : 'none'}, not ${r.digest}`);
  return [...problems, ...claimMismatches(referrer.annotations, claims)];
}

function errorJson(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** Without options (no --public-url) the route answers 404. */
export function buildsApp(store: Store, o: BuildReportOptions | undefined): Hono {
  const app = new Hono();
  if (!o) {
    serve(app, BUILD_REPORT, () => {
      throw new NotFoundError('build reports are off', { hint: 'start tagtrail serve with --public-url (or TAGTRAIL_PUBLIC_URL) and --registry' });
    });
    return app;
  }
  const ingestor = new Ingestor({ client: o.client, store, registry: o.registry, onWarning: (message) => o.logger?.warn({ message }, 'referrer ignored') });

  serve(app, BUILD_REPORT, async (c) => {
    // The token first: a report that is not signed by a trusted GitLab is not read at all.
    const authorization = c.req.header('authorization') ?? '';
    const bearer = /^bearer\s+(\S+)\s*$/i.exec(authorization);
    let claims: IdTokenClaims;
    try {
      if (!bearer) throw new AuthError('UNAUTHORIZED', 'the report needs Authorization: Bearer <GitLab ID token>');
      claims = await o.verifier.verify(bearer[1] as string);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      o.logger?.warn({ err: { message: err.message } }, 'build report refused');
      c.header('www-authenticate', 'Bearer realm="tagtrail"');
      return c.json(errorJson('UNAUTHORIZED', err.message), 401);
    }
    let images: ReportedImage[];
    try {
      images = parseReport(await readBodyText(c.req.raw, o.maxBodyBytes));
    } catch (err) {
      if (isTagtrailError(err)) return c.json(errorJson(err.code, err.message), httpStatusFor(err) as 400);
      throw err;
    }
    // Every image is checked before any is recorded: a report is recorded whole or not at all.
    const mismatches: { image: string; problems: string[] }[] = [];
    for (const r of images) {
      const problems = await checkImage(o, claims, r);
      if (problems.length > 0) mismatches.push({ image: r.image, problems });
    }
    if (mismatches.length > 0) {
      o.logger?.warn({ projectPath: claims.projectPath, pipelineId: claims.pipelineId, mismatches }, 'build report does not match its token');
      return c.json({ error: { code: 'REPORT_MISMATCH', message: mismatches.map((m) => `${m.image}: ${m.problems.join('; ')}`).join('\n') }, images: mismatches }, 422);
    }
    const at = o.now();
    const verified: VerifiedBuild = { by: 'gitlab-id-token', issuer: claims.iss, projectPath: claims.projectPath, pipelineId: claims.pipelineId, jobId: claims.jobId, sha: claims.sha, ref: claims.ref, at };
    // Every registry read first (a failure answers 502 with nothing verified), then the
    // verifications of all images together, in one transaction.
    const tagsToSet: { repository: string; tag: string; digest: string }[] = [];
    for (const r of images) {
      await ingestor.ingest(r.ref.repository, r.digest);
      // The tag shows at once when it still points at the digest; otherwise the feed or the reconcile catches up.
      if (r.ref.tag !== undefined) {
        const head = await o.client.headManifest({ registry: r.ref.registry, repository: r.ref.repository, tag: r.ref.tag });
        if (head?.digest === r.digest) tagsToSet.push({ repository: r.ref.repository, tag: r.ref.tag, digest: r.digest });
      }
      if (r.referrer !== undefined) {
        try {
          await ingestor.followReferrersTag(r.ref.repository, referrersTag(r.digest));
        } catch (err) {
          o.logger?.warn({ repository: r.ref.repository, err: { message: err instanceof Error ? err.message : String(err) } }, 'referrers tag not followed');
        }
      }
    }
    for (const t of tagsToSet) await store.setTag(t.repository, t.tag, t.digest, at);
    await store.recordVerifications(images.map((r) => ({ repository: r.ref.repository, digest: r.digest })), verified);
    const out = images.map((r) => ({ image: r.image, digest: r.digest, ...(r.referrer ? { referrer: r.referrer } : {}), accepted: true }));
    o.logger?.info({ projectPath: claims.projectPath, pipelineId: claims.pipelineId, jobId: claims.jobId, images: images.length }, 'build report verified');
    return c.json({ images: out, verified: { ...verified, at: at.toISOString() } });
  });
  return app;
}
