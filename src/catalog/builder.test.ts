import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BUILDERS, detectBuilder } from './builder.js';
import { mediaFamily } from './derived.js';
import { buildDetailsSource } from '../details/build.js';

// Configs in the shapes the builders write (field order and values as they produce them). The
// base image history (alpine, built by Docker's classic builder) comes first in every one, as it
// does in a real image: detection must read the image's own newest step, not its base's.
const alpineBase = [
  { created: '2024-01-27T00:30:48.624602109Z', created_by: '/bin/sh -c #(nop) ADD file:37a76ec18f9887751cd8473744917d08b7431fc4085097bb6a09d81b41775473 in / ' },
  { created: '2024-01-27T00:30:48.743965523Z', created_by: '/bin/sh -c #(nop)  CMD ["/bin/sh"]', empty_layer: true },
];

const buildkitConfig = {
  architecture: 'amd64',
  config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/app'], WorkingDir: '/', ArgsEscaped: true },
  created: '2024-02-01T10:00:00.123456789Z',
  history: [
    ...alpineBase,
    { created: '2024-02-01T10:00:00.1Z', created_by: 'RUN /bin/sh -c apk add --no-cache ca-certificates # buildkit', comment: 'buildkit.dockerfile.v0' },
    { created: '2024-02-01T10:00:00.2Z', created_by: 'COPY app /app # buildkit', comment: 'buildkit.dockerfile.v0' },
    { created: '2024-02-01T10:00:00.2Z', created_by: 'CMD ["/app"]', comment: 'buildkit.dockerfile.v0', empty_layer: true },
  ],
  os: 'linux',
  rootfs: { type: 'layers', diff_ids: ['sha256:' + '1'.repeat(64)] },
};

const kanikoConfig = {
  architecture: 'amd64',
  author: '',
  created: '2024-02-01T10:00:00.5Z',
  history: [
    ...alpineBase,
    { created: '2024-02-01T10:00:00.3Z', author: 'kaniko', created_by: 'RUN apk add --no-cache ca-certificates', comment: '' },
    { created: '0001-01-01T00:00:00Z', author: 'kaniko', created_by: 'CMD ["/app"]', comment: '', empty_layer: true },
  ],
  os: 'linux',
  rootfs: { type: 'layers', diff_ids: [] },
  config: { Cmd: ['/app'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
};

const dockerClassicConfig = {
  architecture: 'amd64',
  config: { Cmd: ['/app'], Image: 'sha256:' + '2'.repeat(64), Labels: null },
  container: '3f1a9c1b2d4e',
  container_config: { Cmd: ['/bin/sh', '-c', '#(nop) ', 'CMD ["/app"]'], Image: 'sha256:' + '2'.repeat(64) },
  created: '2024-02-01T10:00:00.7Z',
  docker_version: '20.10.24',
  history: [...alpineBase, { created: '2024-02-01T10:00:00.7Z', created_by: '/bin/sh -c #(nop)  CMD ["/app"]', empty_layer: true }],
  os: 'linux',
  rootfs: { type: 'layers', diff_ids: [] },
};

// What `buildah commit` wrote here (buildah 1.28, from scratch, one label): the label and the
// bare "/bin/sh" history entry.
const buildahConfig = {
  created: '2026-11-26T19:43:10.863183833Z',
  architecture: 'amd64',
  os: 'linux',
  config: { Cmd: ['/app'], Labels: { 'io.buildah.version': '1.28.2', 'org.opencontainers.image.source': 'https://x' } },
  rootfs: { type: 'layers', diff_ids: [] },
  history: [{ created: '2026-11-26T19:43:10.867966899Z', created_by: '/bin/sh' }],
};

const jibConfig = {
  created: '1970-01-01T00:00:00Z',
  architecture: 'amd64',
  os: 'linux',
  config: { Entrypoint: ['java', '-cp', '@/app/jib-classpath-file', 'com.example.App'] },
  history: [
    { created: '2024-01-10T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:abc in / ' },
    { created: '1970-01-01T00:00:00Z', author: 'Jib', created_by: 'jib-maven-plugin:3.4.0', comment: 'dependencies' },
    { created: '1970-01-01T00:00:00Z', author: 'Jib', created_by: 'jib-maven-plugin:3.4.0', comment: 'resources' },
    { created: '1970-01-01T00:00:00Z', author: 'Jib', created_by: 'jib-maven-plugin:3.4.0', comment: 'classes' },
  ],
  rootfs: { type: 'layers', diff_ids: [] },
};

const koConfig = {
  architecture: 'amd64',
  author: 'github.com/ko-build/ko',
  created: '0001-01-01T00:00:00Z',
  history: [
    { author: 'apko', created: '2024-01-01T00:00:00Z', created_by: 'apko', comment: 'This is an apko single-layer image' },
    { author: 'ko', created: '0001-01-01T00:00:00Z', created_by: 'ko build ko://github.com/example/app', comment: 'kodata contents, at $KO_DATA_PATH' },
    { author: 'ko', created: '0001-01-01T00:00:00Z', created_by: 'ko build ko://github.com/example/app', comment: 'go build output, at /ko-app/app' },
  ],
  os: 'linux',
  rootfs: { type: 'layers', diff_ids: [] },
  config: { Entrypoint: ['/ko-app/app'], Env: ['KO_DATA_PATH=/var/run/ko'] },
};

const ociImage = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:' + 'a'.repeat(64), size: 100 }, layers: [] };

describe('detectBuilder: configs', () => {
  const cases: [string, unknown, string, string][] = [
    ['BuildKit', buildkitConfig, 'buildkit', 'history[4].comment=buildkit.dockerfile.v0'],
    ['kaniko', kanikoConfig, 'kaniko', 'history[3].author=kaniko'],
    ['Docker classic', dockerClassicConfig, 'docker', 'config docker_version=20.10.24'],
    ['buildah', buildahConfig, 'buildah', 'config label io.buildah.version=1.28.2'],
    ['Jib', jibConfig, 'jib', 'history[3].created_by=jib-maven-plugin:3.4.0'],
    ['ko', koConfig, 'ko', 'history[2].author=ko'],
  ];
  for (const [name, config, builder, evidence] of cases) {
    it(`${name} → ${builder}, with the signal named`, () => {
      const r = detectBuilder({ manifest: ociImage, config, configRead: true });
      expect(r.builder).toBe(builder);
      expect(r.confidence).toBe('high');
      expect(r.evidence).toContain(evidence);
    });
  }

  it('the newest step decides: BuildKit on top of a buildah-built base is BuildKit', () => {
    const config = { ...buildkitConfig, config: { ...buildkitConfig.config, Labels: { 'io.buildah.version': '1.33.0' } } };
    expect(detectBuilder({ manifest: ociImage, config }).builder).toBe('buildkit');
  });

  it('buildah bud writes #(nop) like Docker; its label tells them apart', () => {
    const bud = {
      ...buildahConfig,
      history: [...alpineBase, { created: '2024-02-01T10:00:00Z', created_by: '/bin/sh -c #(nop) CMD ["/app"]', empty_layer: true }],
    };
    const r = detectBuilder({ manifest: ociImage, config: bud });
    expect(r.builder).toBe('buildah');
    expect(r.evidence).toEqual(['history[2].created_by has "#(nop)"', 'config label io.buildah.version=1.28.2']);
  });

  it('BuildKit 0.10 embedded moby.buildkit.buildinfo.v1 in the config', () => {
    const config = { ...kanikoConfig, history: [{ created: '2022-05-01T00:00:00Z', created_by: '/bin/sh' }], 'moby.buildkit.buildinfo.v1': 'eyJmcm9udGVuZCI6ImRvY2tlcmZpbGUudjAifQ==' };
    expect(detectBuilder({ manifest: ociImage, config })).toEqual({ builder: 'buildkit', confidence: 'high', evidence: ['config key moby.buildkit.buildinfo.v1'] });
  });

  it('labels alone (the catalog keeps labels, not configs) still tell buildah', () => {
    expect(detectBuilder({ manifest: ociImage, labels: { 'io.buildah.version': '1.28.2' }, configRead: true }).builder).toBe('buildah');
  });

  it('a config that says nothing is unknown; a config never read is unread', () => {
    const plain = { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [{ created_by: 'something' }] };
    expect(detectBuilder({ manifest: ociImage, config: plain })).toEqual({ builder: 'unknown', confidence: 'none', evidence: [] });
    expect(detectBuilder({ manifest: ociImage })).toEqual({ builder: 'unread', confidence: 'none', evidence: [] });
    expect(detectBuilder({ manifest: ociImage, configRead: true }).builder).toBe('unknown');
  });
});

describe('detectBuilder: manifests', () => {
  it('an index listing a BuildKit attestation manifest is BuildKit, config or not', () => {
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:' + 'b'.repeat(64), size: 1, platform: { architecture: 'amd64', os: 'linux' } },
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: 'sha256:' + 'c'.repeat(64),
          size: 1,
          annotations: { 'vnd.docker.reference.digest': 'sha256:' + 'b'.repeat(64), 'vnd.docker.reference.type': 'attestation-manifest' },
          platform: { architecture: 'unknown', os: 'unknown' },
        },
      ],
    };
    const r = detectBuilder({ manifest: index, children: [{ builder: 'unread', confidence: 'none', evidence: [] }] });
    expect(r).toEqual({ builder: 'buildkit', confidence: 'high', evidence: ['manifests[1] is an attestation manifest (vnd.docker.reference.type=attestation-manifest)'] });
  });

  it('an index without attestations goes by its platform manifests', () => {
    const index = { schemaVersion: 2, manifests: [{}, {}] };
    const ko = { builder: 'ko' as const, confidence: 'high' as const, evidence: ['history[2].author=ko'] };
    expect(detectBuilder({ manifest: index, children: [ko, ko] })).toEqual({
      builder: 'ko',
      confidence: 'high',
      evidence: ['2 of 2 platform manifests: ko', 'platform manifest: history[2].author=ko'],
    });
    expect(detectBuilder({ manifest: index, children: [ko, { builder: 'unknown', confidence: 'none', evidence: [] }] }).confidence).toBe('medium');
    expect(detectBuilder({ manifest: index, children: [{ builder: 'unread', confidence: 'none', evidence: [] }] }).builder).toBe('unread');
  });

  it("buildah's empty base annotations (FROM scratch) are a medium signal without the config", () => {
    const m = { ...ociImage, annotations: { 'org.opencontainers.image.base.digest': '', 'org.opencontainers.image.base.name': '' } };
    expect(detectBuilder({ manifest: m })).toMatchObject({ builder: 'buildah', confidence: 'medium' });
    const named = { ...ociImage, annotations: { 'org.opencontainers.image.base.digest': 'sha256:' + 'd'.repeat(64), 'org.opencontainers.image.base.name': 'docker.io/library/alpine:3.19' } };
    expect(detectBuilder({ manifest: named })).toMatchObject({ builder: 'buildah', confidence: 'low' });
    // ko writes the same annotations: its config, once read, wins.
    expect(detectBuilder({ manifest: named, config: koConfig }).builder).toBe('ko');
  });

  it('never throws and always answers a known builder, whatever the JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), fc.option(fc.dictionary(fc.string(), fc.string())), fc.boolean(), (manifest, config, labels, configRead) => {
        const r = detectBuilder({ manifest, config, configRead, ...(labels ? { labels } : {}) });
        expect(BUILDERS).toContain(r.builder);
        expect(Array.isArray(r.evidence)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on configs shaped like images with arbitrary history entries', () => {
    const entry = fc.record({ created_by: fc.oneof(fc.string(), fc.constant('/bin/sh -c #(nop) CMD'), fc.jsonValue()), author: fc.oneof(fc.string(), fc.constantFrom('ko', 'kaniko', 'Jib')), comment: fc.jsonValue() }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.array(entry), fc.dictionary(fc.string(), fc.jsonValue()), (history, extra) => {
        const r = detectBuilder({ manifest: ociImage, config: { ...extra, history, config: { Labels: extra } } });
        expect(BUILDERS).toContain(r.builder);
      }),
      { numRuns: 300 },
    );
  });
});

describe('buildDetailsSource and mediaFamily', () => {
  it('annotations beat a referrer, which beats labels', () => {
    const ci = { 'com.gitlab.ci.pipeline_id': '9' };
    expect(buildDetailsSource({ annotations: ci, referrer: true, labels: { 'org.opencontainers.image.revision': 'abc' } })).toBe('annotations');
    expect(buildDetailsSource({ annotations: {}, referrer: true, labels: { 'org.opencontainers.image.revision': 'abc' } })).toBe('referrer');
    expect(buildDetailsSource({ annotations: {}, labels: { 'org.label-schema.vcs-ref': 'abc' } })).toBe('labels');
    expect(buildDetailsSource({ annotations: {}, labels: { 'io.buildah.version': '1.28.2' } })).toBe('none');
    expect(buildDetailsSource({ annotations: {}, children: ['none', 'labels'] })).toBe('labels');
  });

  it('families', () => {
    expect(mediaFamily('application/vnd.oci.image.index.v1+json')).toBe('oci');
    expect(mediaFamily('application/vnd.docker.distribution.manifest.list.v2+json')).toBe('docker');
    expect(mediaFamily('application/vnd.docker.distribution.manifest.v2+json')).toBe('docker');
    expect(mediaFamily('application/vnd.example+json')).toBe('other');
  });
});
