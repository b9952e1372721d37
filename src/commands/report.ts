// --report URL (annotate and attach): after the write, the images go to tagtrail serve at
// URL/api/v1/builds with the job's GitLab ID token (TAGTRAIL_ID_TOKEN), so that serve verifies
// them (src/server/builds.ts). A report that fails is a warning; the exit code stays the write's.
// The token is a secret: it goes in the Authorization header only, never into output.
import { UsageError } from '../errors.js';
import { inertText } from '../inert-text.js';
import { isLoopbackHost } from '../oci/reference.js';
import type { Runtime } from '../runtime.js';
import { VERSION } from '../version.js';

export interface ReportedImage {
  /** REGISTRY/REPOSITORY:TAG (or @DIGEST when no tag was named). */
  image: string;
  /** The image's digest after the write. */
  digest: string;
  /** attach only: the referrer written. */
  referrer?: string;
}

export interface ReportOutcome {
  accepted: boolean;
  /** serve's HTTP status, when it answered. */
  status?: number;
  /** Why it was not accepted. */
  message?: string;
}

const REPORT_TIMEOUT_MS = 30_000;
const MAX_ANSWER_BYTES = 64 * 1024;

/** The --report URL (or TAGTRAIL_REPORT_URL), checked before any write: https, or http on a loopback host. */
export function reportUrlFrom(rt: Runtime, flag: string | undefined): URL | undefined {
  const value = flag ?? rt.env.TAGTRAIL_REPORT_URL;
  if (value === undefined || value.trim() === '') return undefined;
  let u: URL;
  try {
    u = new URL(value.trim());
  } catch {
    throw new UsageError(`--report ${JSON.stringify(value.slice(0, 200))} is not an absolute URL`, { hint: 'give the public URL of tagtrail serve, e.g. --report https://tagtrail.example.com' });
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.host))) {
    throw new UsageError(`--report ${JSON.stringify(u.origin)}: only https is accepted (plain http only on a loopback host)`, { hint: 'the ID token must not cross the network in clear text' });
  }
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') throw new UsageError('--report takes the base URL of tagtrail serve, without credentials, query or fragment');
  return u;
}

/** Reports the images; never throws: a failure is the outcome, and a warning on stderr. */
export async function sendReport(rt: Runtime, base: URL, images: readonly ReportedImage[]): Promise<ReportOutcome> {
  const outcome = await post(rt, base, images);
  if (!outcome.accepted) rt.stderr.write(`warning: the build report to ${base.origin} was not accepted: ${inertText(outcome.message ?? 'unknown reason')}\n`);
  return outcome;
}

async function post(rt: Runtime, base: URL, images: readonly ReportedImage[]): Promise<ReportOutcome> {
  if (images.length === 0) return { accepted: false, message: 'no image was written' };
  const token = rt.env.TAGTRAIL_ID_TOKEN;
  if (token === undefined || token.trim() === '') {
    return { accepted: false, message: 'TAGTRAIL_ID_TOKEN is not set; declare it under id_tokens in the job, with aud set to the report URL' };
  }
  const url = new URL(`${base.href.replace(/\/+$/, '')}/api/v1/builds`);
  let res: Response;
  try {
    res = await rt.fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token.trim()}`, 'content-type': 'application/json', accept: 'application/json', 'user-agent': `tagtrail/${VERSION}` },
      body: JSON.stringify({ images: images.map((i) => ({ image: i.image, digest: i.digest, ...(i.referrer ? { referrer: i.referrer } : {}) })) }),
      redirect: 'error',
      signal: AbortSignal.timeout(REPORT_TIMEOUT_MS),
    });
  } catch (err) {
    return { accepted: false, message: `serve could not be reached: ${err instanceof Error ? err.message : String(err)}` };
  }
  let message: string | undefined;
  try {
    const text = (await res.text()).slice(0, MAX_ANSWER_BYTES);
    const body = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof body.error?.message === 'string') message = body.error.message.slice(0, 2000);
  } catch {
    message = undefined;
  }
  if (res.status === 200) return { accepted: true, status: 200 };
  return { accepted: false, status: res.status, message: `HTTP ${res.status}${message ? `: ${message}` : ''}` };
}
