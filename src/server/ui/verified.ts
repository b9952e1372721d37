// The "Verified by GitLab" mark: shown where a build report for this repository and digest was
// checked against a GitLab ID token (src/server/builds.ts). It names the issuer; it says what was
// proven (a job of that project pushed this digest in that pipeline), not how the image was built.
import { html } from 'hono/html';
import type { VerifiedBuild } from '../../catalog/verifications.js';
import type { Html } from './html.js';

export function verifiedMark(v: VerifiedBuild | undefined, compact = false): Html {
  if (!v) return '';
  const what = `a GitLab job of ${v.projectPath} (pipeline ${v.pipelineId}, job ${v.jobId}, commit ${v.sha.slice(0, 12)} on ${v.ref}) pushed this digest`;
  if (compact) return html` <span class="verified" data-verified="gitlab" title="${what}; issuer ${v.issuer}">✔ Verified by GitLab</span>`;
  return html`<p class="verified" data-verified="gitlab">✔ <strong>Verified by GitLab</strong> (${v.issuer}): ${what}.</p>`;
}

/** The verification of this repository among an image's, if any. */
export function verificationFor(verifications: readonly (VerifiedBuild & { repository: string })[] | undefined, repository: string): VerifiedBuild | undefined {
  return verifications?.find((v) => v.repository === repository);
}
