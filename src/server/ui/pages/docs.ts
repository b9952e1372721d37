// /docs/annotate : how to give an image build details. Served by tagtrail itself, so it works
// where the internet does not.
import { html } from 'hono/html';
import { type Html, type ViewContext, layout } from '../html.js';

export function docsPage(ctx: ViewContext): Html {
  const body = html`<h1>Adding build details to images</h1>
<p>tagtrail shows where a tag came from when its manifest carries GitLab CI build details as OCI
annotations: <code>com.gitlab.ci.*</code> (pipeline, job, commit, ref, merge request, project,
user) and <code>org.opencontainers.image.*</code> (source, revision, version, title, created).
Images without them are listed with “No build details”.</p>

<h2 id="after-push">After the push: <code>tagtrail annotate</code></h2>
<p>Add one line to the job that pushes the image. tagtrail rewrites only the manifest; no layer
is downloaded or pushed again.</p>
<pre class="raw"><code>build:
  stage: build
  script:
    - docker build -t "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA" .
    - docker push "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"
    - tagtrail annotate "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"</code></pre>
<p>In a GitLab job, <code>annotate</code> logs in with <code>CI_REGISTRY_USER</code> and
<code>CI_REGISTRY_PASSWORD</code> when the image lives in <code>$CI_REGISTRY</code>. Add your own
annotations with <code>-a KEY=VALUE</code>, e.g. <code>-a com.example.team=payments</code>.</p>
<p class="muted">Annotating gives the tag a new digest. To keep the digest, stamp the image at
build time instead.</p>

<h2 id="build-time">At build time: <code>tagtrail flags</code></h2>
<p>Where the builder writes annotations itself, <code>tagtrail flags</code> prints the same set
as builder flags, so the image is born annotated:</p>
<pre class="raw"><code>eval "set -- $(tagtrail flags --format buildx)"
docker buildx build --push -t "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA" "$@" .</code></pre>
<p>The formats are <code>buildx</code>, <code>buildah</code>, <code>podman</code>,
<code>labels</code>, <code>json</code> and <code>dotenv</code>; see
<code>tagtrail flags --help</code>.</p>

<h2 id="existing">Images built elsewhere</h2>
<p>An image with <code>org.opencontainers.image.*</code> or <code>org.label-schema.*</code> labels
in its config shows those as a fallback. Run <code>tagtrail annotate IMAGE --no-ci -a
KEY=VALUE</code> outside CI to stamp annotations by hand.</p>

<h2 id="catalog">Getting images into this catalog</h2>
<p><code>tagtrail sync --registry URL</code> reads the whole registry once; <code>tagtrail serve
--registry URL</code> keeps it up to date from the registry's notifications and a periodic
reconcile.</p>`;
  return layout({ title: 'Adding build details', ctx, body });
}

export function errorPage(status: number, heading: string, message: string, ctx: ViewContext): Html {
  const body = html`<h1>${heading}</h1>
<p>${message}</p>
<p><a href="/">All repositories</a></p>`;
  return layout({ title: `${status} ${heading}`, ctx, body });
}
