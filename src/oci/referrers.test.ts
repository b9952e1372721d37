import { describe, expect, it } from 'vitest';
import { referrerAnnotations, sameDetails } from './attach.js';
import { toAnnotations } from './annotations.js';
import { sha256Digest } from './digest.js';
import { parseManifest, serialize } from './manifest.js';
import { OCI_INDEX, OCI_MANIFEST } from './mediatypes.js';
import { BUILD_DETAILS_ARTIFACT_TYPE, EMPTY_BLOB, EMPTY_DIGEST, artifactTypeOf, buildDetailsManifest, referrersTagMismatch, referrersTag, referrerDescriptor, referrerSubject } from './referrers.js';
import { nextLink } from './registry.js';

const SUBJECT = `sha256:${'a'.repeat(64)}`;
const CHILD1 = `sha256:${'b'.repeat(64)}`;
const CHILD2 = `sha256:${'c'.repeat(64)}`;
const REFERRER = `sha256:${'d'.repeat(64)}`;

function index(manifests: { digest: string; mediaType?: string }[], mediaType = OCI_INDEX) {
  return parseManifest(serialize({ schemaVersion: 2, mediaType, manifests: manifests.map((m) => ({ mediaType: m.mediaType ?? OCI_MANIFEST, digest: m.digest, size: 10 })) }));
}

describe('the referrers tag', () => {
  it('names the tag after the digest with - for :', () => {
    expect(referrersTag(SUBJECT)).toBe(`sha256-${'a'.repeat(64)}`);
    expect(referrersTag(`sha512:${'e'.repeat(128)}`)).toBe(`sha512-${'e'.repeat(64)}`);
  });

  it('the empty blob is {} and its digest is the one the image spec names', () => {
    expect(sha256Digest(EMPTY_BLOB)).toBe(EMPTY_DIGEST);
  });

  it('accepts an OCI index of referrers', () => {
    expect(referrersTagMismatch(index([{ digest: REFERRER }]), { digest: SUBJECT, childDigests: [CHILD1, CHILD2] })).toBeUndefined();
    expect(referrersTagMismatch(index([]), { digest: SUBJECT, childDigests: [CHILD1] })).toBeUndefined();
  });

  it("refuses the subject read back under the tag's name (GitLab.com), its platforms, or anything not an OCI index", () => {
    const subjectItself = index([{ digest: CHILD1 }, { digest: CHILD2 }]);
    expect(referrersTagMismatch(subjectItself, { digest: subjectItself.digest })).toMatch(/to the subject .* itself/);
    // The same list under another digest (say, re-serialised): still the subject's own platforms.
    expect(referrersTagMismatch(subjectItself, { digest: SUBJECT, childDigests: [CHILD1, CHILD2] })).toMatch(/own platform manifests/);
    expect(referrersTagMismatch(index([{ digest: CHILD1 }], 'application/vnd.docker.distribution.manifest.list.v2+json'), { digest: SUBJECT })).toMatch(/not an OCI index/);
    const image = parseManifest(serialize({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: CHILD1, size: 1 }, layers: [] }));
    expect(referrersTagMismatch(image, { digest: SUBJECT })).toMatch(/not an OCI index/);
    expect(referrersTagMismatch(index([{ digest: SUBJECT }]), { digest: SUBJECT })).toMatch(/subject itself as its referrer/);
  });
});

describe('the build-details manifest', () => {
  const subject = { mediaType: OCI_INDEX, digest: SUBJECT, size: 1234 };
  const annotations = toAnnotations([
    ['com.gitlab.ci.pipeline_id', '1'],
    ['org.opencontainers.image.created', '2026-01-01T00:00:00Z'],
  ]);

  it('is an OCI manifest of our artifactType with the empty config and layer and the exact subject', () => {
    const m = buildDetailsManifest(subject, annotations);
    const parsed = parseManifest(m.bytes);
    expect(parsed.mediaType).toBe(OCI_MANIFEST);
    expect(parsed.digest).toBe(m.digest);
    expect(artifactTypeOf(parsed)).toBe(BUILD_DETAILS_ARTIFACT_TYPE);
    expect(referrerSubject(parsed)).toBe(SUBJECT);
    expect(m.json.subject).toEqual(subject);
    expect(parsed.kind === 'image' && parsed.config.digest).toBe(EMPTY_DIGEST);
    expect(parsed.kind === 'image' && parsed.layers.map((l) => l.digest)).toEqual([EMPTY_DIGEST]);
    expect(parsed.annotations).toEqual(annotations);
  });

  it('its descriptor in the referrers tag carries the artifactType and annotations', () => {
    const m = buildDetailsManifest(subject, annotations);
    expect(referrerDescriptor({ mediaType: OCI_MANIFEST, digest: m.digest, bytes: m.bytes, artifactType: BUILD_DETAILS_ARTIFACT_TYPE, annotations })).toEqual({
      mediaType: OCI_MANIFEST,
      digest: m.digest,
      size: m.bytes.byteLength,
      artifactType: BUILD_DETAILS_ARTIFACT_TYPE,
      annotations: { ...annotations },
    });
  });

  it('adds the creation time unless the set has one, and compares sets without it', () => {
    const now = new Date('2030-02-03T04:05:06.789Z');
    const a = referrerAnnotations({ set: toAnnotations([['com.example.a', '1']]), remove: [] }, now);
    expect(a['org.opencontainers.image.created']).toBe('2030-02-03T04:05:06Z');
    const b = referrerAnnotations({ set: toAnnotations([['com.example.a', '1']]), setIfAbsent: toAnnotations([['org.opencontainers.image.created', '2020-01-01T00:00:00Z']]), remove: [] }, now);
    expect(b['org.opencontainers.image.created']).toBe('2020-01-01T00:00:00Z');
    expect(sameDetails(a, b)).toBe(true);
    expect(sameDetails(a, toAnnotations([['com.example.a', '2']]))).toBe(false);
    expect(sameDetails(a, toAnnotations([['com.example.a', '1'], ['com.example.b', '1']]))).toBe(false);
    expect(sameDetails(undefined, a)).toBe(false);
  });
});

describe('Link pagination of the referrers API', () => {
  it('takes the next link, relative or absolute, quoted or not', () => {
    expect(nextLink('</v2/a/referrers/sha256:x?page=2>; rel="next"')).toBe('/v2/a/referrers/sha256:x?page=2');
    expect(nextLink('<https://r.example/v2/a/referrers/sha256:x?n=2&last=y>; rel=next')).toBe('https://r.example/v2/a/referrers/sha256:x?n=2&last=y');
    expect(nextLink('</v2/a?p=1>; rel="prev", </v2/a?p=3>; rel="next"')).toBe('/v2/a?p=3');
    expect(nextLink(null)).toBeUndefined();
    expect(nextLink('</v2/a?p=1>; rel="prev"')).toBeUndefined();
  });
});
