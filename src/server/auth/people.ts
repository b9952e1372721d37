// Who a GitLab token belongs to and what they may read, asked of GitLab with that very token:
// GET /api/v4/user, then GET /api/v4/projects?min_access_level=20, every page. Cached for at
// most the TTL (5 minutes by default), keyed by the token's SHA-256, so a person removed from a
// project stops seeing it within the TTL and the token itself is never a key in memory. A token
// GitLab refuses is remembered as refused for a minute (at most the TTL).
import { AuthError } from '../../errors.js';
import { GitlabApi } from '../../gitlab/api.js';
import type { ReadScope } from '../../catalog/read-scope.js';
import { sha256 } from './seal.js';

/** Reporter: https://docs.gitlab.com/api/members/#roles. Reporters and up may pull images. */
const REPORTER = 20;
export const DEFAULT_ACCESS_TTL_SECONDS = 300;
const MAX_ENTRIES = 10_000;
/** How long GitLab's refusal of a token (401, 403) is remembered. */
const REFUSAL_TTL_MS = 60_000;

export interface Person {
  username: string;
  scope: ReadScope;
}

interface PeopleOptions {
  gitlabUrl: URL;
  fetch: typeof fetch;
  ttlMs: number;
  now: () => number;
  /** GitLab discovery records each repository's project visibility: public and internal ones count. */
  publicAndInternal: boolean;
}

export class People {
  private readonly cache = new Map<string, { until: number; person: Promise<Person> }>();

  constructor(private readonly opts: PeopleOptions) {}

  /** The person the token belongs to; AuthError UNAUTHORIZED when GitLab refuses the token. */
  resolve(token: string): Promise<Person> {
    const key = sha256(token);
    const now = this.opts.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.person;
    if (hit) this.cache.delete(key);
    const person = this.ask(token);
    this.cache.set(key, { until: now + this.opts.ttlMs, person });
    // A refusal is remembered for a minute, so a stream of bad tokens does not become a stream of
    // calls to GitLab; an outage (network, 5xx) is not: the next request asks again.
    person.catch((err: unknown) => {
      if (this.cache.get(key)?.person !== person) return;
      if (err instanceof AuthError) this.cache.set(key, { until: this.opts.now() + Math.min(REFUSAL_TTL_MS, this.opts.ttlMs), person });
      else this.cache.delete(key);
    });
    if (this.cache.size > MAX_ENTRIES) {
      for (const [k, v] of this.cache) if (v.until <= now || this.cache.size > MAX_ENTRIES) this.cache.delete(k);
    }
    return person;
  }

  private async ask(token: string): Promise<Person> {
    const api = new GitlabApi({ url: this.opts.gitlabUrl, token, fetch: this.opts.fetch, tokenHeader: 'bearer', maxAttempts: 2 });
    try {
      const user = await api.currentUser();
      const projects = await api.memberProjectPaths(REPORTER);
      return { username: user.username, scope: { projects, publicAndInternal: this.opts.publicAndInternal } };
    } catch (err) {
      // 401 and 403 (a token without read_api) both mean: this token does not open the catalog.
      if (err instanceof AuthError) throw new AuthError('UNAUTHORIZED', 'GitLab does not accept this token, or it lacks the read_api scope', { cause: err });
      throw err;
    }
  }
}
