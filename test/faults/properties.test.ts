// Property-based tests (fast-check) of everything tagtrail parses from outside: image references,
// annotation keys and values, manifests, webhook envelopes, token realms. Two kinds of property:
//   - round-trips: what we generate as valid parses back to what we generated;
//   - closure: any input at all either parses or throws one of our own error classes, never a
//     TypeError, RangeError or SyntaxError.
// Inputs include prototype-pollution keys (__proto__, constructor, prototype), deep nesting, huge
// values and invalid UTF-8. TAGTRAIL_PROPERTY_RUNS raises the runs per property (default 300).
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { EVENTS_MEDIA_TYPE, parseEnvelope, parseEnvelopeText } from '../../src/catalog/events.js';
import { InvalidInputError, TagtrailError, UnreadableManifestError, UsageError } from '../../src/errors.js';
import {
  MAX_VALUE_BYTES,
  applyAnnotationChanges,
  emptyAnnotations,
  parseAnnotationArg,
  validateAnnotationKey,
  validateAnnotationValue,
  validateAnnotations,
} from '../../src/oci/annotations.js';
import { checkRealm, isLinkLocalOrMetadataHost } from '../../src/oci/auth/token.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { MAX_MANIFEST_DEPTH, jsonToOci, jsonWithAnnotations, parseManifest, serialize } from '../../src/oci/manifest.js';
import { formatReference, parseReference, type Reference } from '../../src/oci/reference.js';
import { readBodyText } from '../../src/server/webhook.js';

const RUNS = Number(process.env.TAGTRAIL_PROPERTY_RUNS ?? '') || 300;
let inputsTried = 0;

/** fc.assert with the configured runs, counting the inputs tried. */
function check<Ts extends [unknown, ...unknown[]]>(property: fc.IProperty<Ts>, runs = RUNS): void {
  const details = fc.check(property, { numRuns: runs });
  inputsTried += details.numRuns + details.numShrinks;
  if (details.failed) throw new Error(fc.defaultReportMessage(details) ?? 'property failed');
}

afterAll(() => {
  // Read by docs/reliability.md's figures; one line in the test output.
  console.log(`property tests: ${inputsTried} inputs tried (${RUNS} runs per property)`);
});

/** Runs fn; passes when it returns or throws one of the given error classes (default: any of ours). */
function onlyOurErrors(fn: () => unknown, ...allowed: (abstract new (...args: never[]) => TagtrailError)[]): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    const classes = allowed.length > 0 ? allowed : [TagtrailError];
    if (classes.some((c) => err instanceof c)) return true;
    throw new Error(`threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message?.slice(0, 300)}`, { cause: err });
  }
}

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'];

function untouchedPrototype(): boolean {
  const probe = {} as Record<string, unknown>;
  return probe.polluted === undefined && probe.annotations === undefined && probe.events === undefined && Object.getPrototypeOf(probe) === Object.prototype;
}

/** A JSON value with prototype-pollution keys in its objects. */
const hostileJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.jsonValue({ maxDepth: 2 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...PROTO_KEYS, 'annotations', 'events', 'target', 'mediaType', 'manifests'), fc.string()), tie('value'), { maxKeys: 5 }),
  ),
})).value;

/** JSON text nested `depth` levels deep, as arrays or objects. */
function nested(depth: number, kind: 'array' | 'object', inner = '1'): string {
  return kind === 'array' ? `${'['.repeat(depth)}${inner}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}${inner}${'}'.repeat(depth)}`;
}

/** Bytes that are not UTF-8: stray continuation bytes, overlong forms, encoded surrogates, 0xFF. */
const INVALID_UTF8 = [[0xff], [0x80], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]].map((b) => Buffer.from(b));

// ---------------------------------------------------------------------------------------------

const pathComponent = fc
  .tuple(fc.array(fc.stringMatching(/^[a-z0-9]{1,6}$/), { minLength: 1, maxLength: 3 }), fc.constantFrom('.', '_', '__', '-', '--'))
  .map(([parts, sep]) => parts.join(sep));
const domainLabel = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/);
const hostArb = fc.oneof(
  fc.tuple(fc.array(domainLabel, { minLength: 2, maxLength: 3 }), fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined })).map(([labels, port]) => `${labels.join('.')}${port ? `:${port}` : ''}`),
  fc.integer({ min: 1, max: 65535 }).map((p) => `localhost:${p}`),
  fc.integer({ min: 1, max: 65535 }).map((p) => `[::1]:${p}`),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 65535 })).map(([o, p]) => `127.0.0.${o}:${p}`),
);
const tagArb = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}$/);
const digestArb = fc.oneof(fc.stringMatching(/^[a-f0-9]{64}$/).map((h) => `sha256:${h}`), fc.stringMatching(/^[a-f0-9]{128}$/).map((h) => `sha512:${h}`));
const referenceArb: fc.Arbitrary<Reference> = fc
  .record({
    registry: hostArb,
    path: fc.array(pathComponent, { minLength: 1, maxLength: 4 }),
    tag: fc.option(tagArb, { nil: undefined }),
    digest: fc.option(digestArb, { nil: undefined }),
  })
  .filter((r) => r.registry.length + 1 + r.path.join('/').length <= 255)
  .map((r) => ({ registry: r.registry, repository: r.path.join('/'), ...(r.tag !== undefined ? { tag: r.tag } : {}), ...(r.digest !== undefined ? { digest: r.digest } : {}) }));

describe('the reference parser', () => {
  it('round-trips every valid reference: parse(format(r)) = r, with latest added only when neither tag nor digest is given', () => {
    check(
      fc.property(referenceArb, (ref) => {
        const parsed = parseReference(formatReference(ref));
        const want = ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: 'latest' } : ref;
        expect(parsed).toEqual(want);
        expect(parseReference(formatReference(parsed))).toEqual(parsed);
      }),
    );
  });

  it('any string parses or throws InvalidInputError, and a parsed one formats to a fixpoint', () => {
    const refChars = fc.constantFrom(...'aZ0:/@._-[]%\u0000 \u00e9\ud800'.split(''), 'sha256:', '__proto__', 'constructor', 'docker.io', 'localhost');
    check(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 100 }), fc.array(refChars, { maxLength: 30 }).map((a) => a.join(''))), (s) => {
        let parsed: Reference | undefined;
        onlyOurErrors(() => (parsed = parseReference(s)), InvalidInputError);
        if (parsed) expect(parseReference(formatReference(parsed))).toEqual(parsed);
      }),
    );
  });

  it('huge, prototype-named and non-string inputs', () => {
    for (const s of ['a'.repeat(5000), `${'a/'.repeat(3000)}a`, 'x/__proto__', 'x/constructor:__proto__', `registry.example.com/${'a'.repeat(300)}`, `a:${'b'.repeat(129)}`]) {
      onlyOurErrors(() => parseReference(s), InvalidInputError);
    }
    expect(parseReference('registry.example.com/constructor/prototype:__proto__')).toEqual({ registry: 'registry.example.com', repository: 'constructor/prototype', tag: '__proto__' });
    for (const v of [undefined, null, 42, {}, ['a']]) onlyOurErrors(() => parseReference(v as unknown as string), InvalidInputError);
    expect(untouchedPrototype()).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

const keyArb = fc
  .tuple(fc.stringMatching(/^[a-z0-9]{1,5}(?:-[a-z0-9]{1,3})?$/), fc.array(fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,6}[A-Za-z0-9])?$/), { minLength: 1, maxLength: 4 }))
  .map(([first, rest]) => [first, ...rest].join('.'));
/** Values without control characters (tab, LF and CR are allowed) and without lone surrogates. */
const valueArb = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  // eslint-disable-next-line no-control-regex
  fc.string({ maxLength: 200 }).map((s) => s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '')),
  fc.constantFrom('', '=', 'a=b=c', '\t\n\r', '__proto__', '{"__proto__":{"polluted":1}}', '\u{1f600}', 'x'.repeat(MAX_VALUE_BYTES)),
);

describe('annotation keys and values', () => {
  it('round-trips KEY=VALUE for every valid key and value', () => {
    check(
      fc.property(keyArb, valueArb, (key, value) => {
        expect(parseAnnotationArg(`${key}=${value}`)).toEqual([key, value]);
      }),
    );
  });

  it('any key and value are accepted or refused with INVALID_ANNOTATION, never anything else', () => {
    const anyString = fc.oneof(fc.string({ maxLength: 100 }), fc.string({ unit: 'binary', maxLength: 50 }), fc.constantFrom(...PROTO_KEYS, 'com.example.__proto__', 'a.b'));
    check(
      fc.property(anyString, anyString, (key, value) => {
        onlyOurErrors(() => validateAnnotationKey(key), InvalidInputError);
        onlyOurErrors(() => validateAnnotationValue(key, value), InvalidInputError);
        onlyOurErrors(() => parseAnnotationArg(`${key}=${value}`), InvalidInputError);
      }),
    );
  });

  it('refuses lone surrogates (invalid UTF-8 once encoded), control characters, and values over 16 KiB', () => {
    check(
      fc.property(fc.string({ maxLength: 40 }), fc.constantFrom('\ud800', '\udfff', '\u0000', '\u001b', '\u007f'), fc.string({ maxLength: 40 }), (a, bad, b) => {
        expect(() => validateAnnotationValue('com.example.k', `${a}${bad}${b}`)).toThrow(InvalidInputError);
      }),
    );
    // Multi-byte characters count as bytes, not code units: 5462 × 3 bytes > 16 KiB.
    expect(() => validateAnnotationValue('com.example.k', '\u20ac'.repeat(5462))).toThrow(InvalidInputError);
    expect(() => validateAnnotationValue('com.example.k', '\u20ac'.repeat(5461))).not.toThrow();
    expect(() => validateAnnotationValue('com.example.k', 'x'.repeat(MAX_VALUE_BYTES + 1))).toThrow(InvalidInputError);
    expect(() => validateAnnotationValue('com.example.k', 'x'.repeat(8 * 1024 * 1024))).toThrow(InvalidInputError);
  });

  it('applies changes to annotations holding prototype-named keys as plain data, polluting nothing', () => {
    const existingArb = fc.dictionary(fc.oneof(fc.constantFrom(...PROTO_KEYS), keyArb), fc.string({ maxLength: 20 }), { maxKeys: 8 });
    check(
      fc.property(existingArb, fc.dictionary(keyArb, fc.string({ maxLength: 20 }), { maxKeys: 5 }), fc.array(fc.constantFrom(...PROTO_KEYS, 'com.example.a'), { maxLength: 3 }), (existingPlain, set, remove) => {
        // As a manifest's annotations arrive: from JSON.parse, where __proto__ is an own key.
        const existing = JSON.parse(JSON.stringify(existingPlain)) as Record<string, string>;
        const setRecord = Object.assign(emptyAnnotations(), set);
        const out = applyAnnotationChanges(existing, { set: setRecord, remove });
        for (const k of Object.keys(existing)) {
          if (remove.includes(k)) expect(Object.prototype.hasOwnProperty.call(out, k)).toBe(false);
          else expect(out[k]).toBe(Object.prototype.hasOwnProperty.call(setRecord, k) ? setRecord[k] : existing[k]);
        }
        for (const [k, v] of Object.entries(set)) if (!remove.includes(k)) expect(out[k]).toBe(v);
        onlyOurErrors(() => validateAnnotations(out), InvalidInputError);
        expect(untouchedPrototype()).toBe(true);
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

const annotationsArb = fc.dictionary(keyArb, valueArb.filter((v) => v.length < 2000), { maxKeys: 6 });
const descriptorArb = fc.record(
  {
    mediaType: fc.constantFrom(OCI_MANIFEST, DOCKER_MANIFEST, 'application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.in-toto+json'),
    digest: digestArb,
    size: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
    platform: fc.record({ os: fc.constantFrom('linux', 'windows', 'unknown'), architecture: fc.constantFrom('amd64', 'arm64', 'unknown') }, { requiredKeys: ['os', 'architecture'] }),
    annotations: annotationsArb,
  },
  { requiredKeys: ['mediaType', 'digest', 'size'] },
);
/** Extra top-level fields a registry may send: anything, prototype-named keys included. */
const extrasArb = fc.dictionary(fc.constantFrom(...PROTO_KEYS, 'subject', 'artifactType', 'x-vendor'), hostileJson, { maxKeys: 3 });

const manifestJsonArb = fc.oneof(
  fc.record({
    schemaVersion: fc.constant(2),
    mediaType: fc.constantFrom(OCI_MANIFEST, DOCKER_MANIFEST),
    config: descriptorArb,
    layers: fc.array(descriptorArb, { maxLength: 4 }),
    annotations: fc.option(annotationsArb, { nil: undefined }),
    extras: extrasArb,
  }),
  fc.record({
    schemaVersion: fc.constant(2),
    mediaType: fc.constantFrom(OCI_INDEX, DOCKER_LIST),
    manifests: fc.array(descriptorArb, { maxLength: 4 }),
    annotations: fc.option(annotationsArb, { nil: undefined }),
    extras: extrasArb,
  }),
);

/** The manifest as JSON text, with the extras written as own keys (JSON.stringify of a spread would lose __proto__). */
function manifestText(m: Record<string, unknown> & { extras: Record<string, unknown> }): string {
  const { extras, ...fields } = m;
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  for (const k of Object.keys(extras)) parts.push(`${JSON.stringify(k)}:${JSON.stringify(extras[k])}`);
  return `{${parts.join(',')}}`;
}

/** Own entries, __proto__ included, as JSON text per key. */
function fieldsOf(json: Record<string, unknown>, without: string[]): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (const k of Object.keys(json)) if (!without.includes(k)) out[k] = JSON.stringify(json[k]);
  return out;
}

describe('the manifest parser', () => {
  it('round-trips: parse → new annotations → serialize → parse keeps every other field, __proto__ included, and the digest is that of the bytes', () => {
    check(
      fc.property(manifestJsonArb, annotationsArb, (m, next) => {
        const text = manifestText(m);
        const parsed = parseManifest(Buffer.from(text));
        expect(parsed.digest).toBe(sha256Digest(Buffer.from(text)));
        expect(parsed.kind).toBe(m.mediaType === OCI_INDEX || m.mediaType === DOCKER_LIST ? 'index' : 'image');
        expect({ ...parsed.annotations }).toEqual(m.annotations ?? {});

        const bytes = serialize(jsonWithAnnotations(parsed.json, Object.assign(emptyAnnotations(), next)));
        const again = parseManifest(bytes);
        expect({ ...again.annotations }).toEqual(next);
        expect(fieldsOf(again.json, ['annotations'])).toEqual(fieldsOf(parsed.json, ['annotations']));

        // --to-oci changes media types only.
        const oci = parseManifest(serialize(jsonToOci(again.json)));
        expect(fieldsOf(oci.json, ['mediaType', 'config', 'layers'])).toEqual(fieldsOf(again.json, ['mediaType', 'config', 'layers']));
        expect([OCI_MANIFEST, OCI_INDEX]).toContain(oci.mediaType);
        expect(untouchedPrototype()).toBe(true);
      }),
    );
  });

  it('any bytes, any JSON: parses or throws UnreadableManifestError', () => {
    check(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
          hostileJson.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
          fc.tuple(manifestJsonArb, fc.nat(), fc.constantFrom(...INVALID_UTF8)).map(([m, at, bad]) => {
            const b = Buffer.from(manifestText(m));
            const i = at % (b.length + 1);
            return Buffer.concat([b.subarray(0, i), bad, b.subarray(i)]);
          }),
        ),
        fc.option(fc.constantFrom(OCI_MANIFEST, OCI_INDEX, DOCKER_LIST, 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'text/plain; charset=utf-8', ''), { nil: undefined }),
        (bytes, contentType) => onlyOurErrors(() => parseManifest(bytes, contentType), UnreadableManifestError),
      ),
    );
  });

  it('refuses invalid UTF-8 anywhere in a manifest', () => {
    check(
      fc.property(manifestJsonArb, fc.nat(), fc.constantFrom(...INVALID_UTF8), (m, at, bad) => {
        const b = Buffer.from(manifestText(m));
        const i = at % (b.length + 1);
        expect(() => parseManifest(Buffer.concat([b.subarray(0, i), bad, b.subarray(i)]))).toThrow(UnreadableManifestError);
      }),
    );
  });

  it('deep nesting, in any field: refused with UNREADABLE_MANIFEST past the limit, and what parses can be written back', () => {
    check(
      fc.property(
        fc.integer({ min: 1, max: 20_000 }),
        fc.constantFrom('array', 'object') as fc.Arbitrary<'array' | 'object'>,
        fc.constantFrom('annotations', 'x-vendor', '__proto__', 'config', 'manifests'),
        (depth, kind, field) => {
          const base = `"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","config":{"mediaType":"x","digest":"sha256:${'a'.repeat(64)}","size":1},"layers":[]`;
          const text = `{${base},${JSON.stringify(field)}:${nested(depth, kind)}}`;
          let parsed: ReturnType<typeof parseManifest> | undefined;
          onlyOurErrors(() => (parsed = parseManifest(Buffer.from(text))), UnreadableManifestError);
          if (depth + 1 > MAX_MANIFEST_DEPTH) expect(parsed).toBeUndefined();
          if (parsed) expect(() => serialize(jsonWithAnnotations(parsed!.json, { 'com.example.k': 'v' }))).not.toThrow();
        },
      ),
      Math.min(RUNS, 200),
    );
  });

  it('huge values: a 3 MiB annotation parses; 5 MiB is refused before parsing', () => {
    const m = (pad: number): Buffer =>
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'x', digest: `sha256:${'a'.repeat(64)}`, size: 1 }, layers: [], annotations: { 'com.example.pad': 'x'.repeat(pad) } }));
    expect(parseManifest(m(3 * 1024 * 1024)).annotations['com.example.pad']).toHaveLength(3 * 1024 * 1024);
    expect(() => parseManifest(m(5 * 1024 * 1024))).toThrow(UnreadableManifestError);
  });

  it('a top-level __proto__ carrying annotations neither hides nor replaces the new annotations', () => {
    const text = `{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","config":{"mediaType":"x","digest":"sha256:${'a'.repeat(64)}","size":1},"layers":[],"__proto__":{"annotations":{"x":"y"}}}`;
    const out = JSON.parse(Buffer.from(serialize(jsonWithAnnotations(parseManifest(Buffer.from(text)).json, { 'com.example.k': 'v' }))).toString()) as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(out, '__proto__')).toBe(true);
    expect(out.annotations).toEqual({ 'com.example.k': 'v' });
  });
});

// ---------------------------------------------------------------------------------------------

const repositoryArb = fc.array(pathComponent, { minLength: 1, maxLength: 3 }).map((p) => p.join('/'));
const timestampArb = fc
  .tuple(fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2999-12-31T23:59:59Z'), noInvalidDate: true }), fc.stringMatching(/^[0-9]{0,9}$/))
  .map(([d, frac]) => d.toISOString().replace(/\.\d{3}Z$/, frac === '' ? 'Z' : `.${frac}Z`));
const eventArb = fc.oneof(
  fc.record({ kind: fc.constant('tag-push' as const), repository: repositoryArb, tag: tagArb, digest: digestArb, timestamp: timestampArb }),
  fc.record({ kind: fc.constant('tag-delete' as const), repository: repositoryArb, tag: tagArb, timestamp: timestampArb }),
  fc.record({ kind: fc.constant('manifest-delete' as const), repository: repositoryArb, digest: digestArb, timestamp: timestampArb }),
  fc.record({ kind: fc.constant('ignored' as const), action: fc.constantFrom('pull', 'mount', 'push'), repository: repositoryArb, digest: digestArb, timestamp: timestampArb }),
);
type GenEvent = typeof eventArb extends fc.Arbitrary<infer T> ? T : never;

function wire(e: GenEvent, id: string, extra: Record<string, unknown>): string {
  const target: Record<string, unknown> =
    e.kind === 'tag-push'
      ? { mediaType: OCI_MANIFEST, repository: e.repository, tag: e.tag, digest: e.digest, url: 'http://169.254.169.254/ignored' }
      : e.kind === 'tag-delete'
        ? { repository: e.repository, tag: e.tag }
        : e.kind === 'manifest-delete'
          ? { repository: e.repository, digest: e.digest }
          : { repository: e.repository, digest: e.digest, mediaType: OCI_MANIFEST };
  const action = e.kind === 'tag-push' ? 'push' : e.kind === 'ignored' ? e.action : 'delete';
  const extras = Object.keys(extra).map((k) => `,${JSON.stringify(k)}:${JSON.stringify(extra[k])}`).join('');
  return `{"id":${JSON.stringify(id)},"timestamp":${JSON.stringify(e.timestamp)},"action":${JSON.stringify(action)},"target":${JSON.stringify(target)}${extras}}`;
}

describe('the webhook envelope parser', () => {
  it('round-trips generated envelopes, with prototype-named extra fields, in order', () => {
    check(
      fc.property(fc.array(fc.tuple(eventArb, fc.uuid(), fc.dictionary(fc.constantFrom(...PROTO_KEYS, 'request', 'actor'), hostileJson, { maxKeys: 2 })), { maxLength: 8 }), (events) => {
        const text = `{"events":[${events.map(([e, id, extra]) => wire(e, id, extra)).join(',')}],"__proto__":{"events":[]}}`;
        const parsed = parseEnvelopeText(text);
        const counted = events.filter(([e]) => e.kind !== 'ignored');
        expect(parsed.ignored).toBe(events.length - counted.length);
        expect(parsed.events.map((e) => ({ ...e, at: e.at.toISOString() }))).toEqual(
          counted.map(([e, id]) => {
            const at = new Date(Date.parse(e.timestamp.replace(/\.(\d{1,3})\d*Z$/, (_, f: string) => `.${f.padEnd(3, '0')}Z`))).toISOString();
            if (e.kind === 'tag-push') return { kind: e.kind, id, at, repository: e.repository, tag: e.tag, digest: e.digest, mediaType: OCI_MANIFEST };
            if (e.kind === 'tag-delete') return { kind: e.kind, id, at, repository: e.repository, tag: e.tag };
            return { kind: 'manifest-delete', id, at, repository: e.repository, digest: (e as { digest: string }).digest };
          }),
        );
        expect(untouchedPrototype()).toBe(true);
      }),
    );
  });

  it('any JSON value, any text: parses or throws UsageError', () => {
    check(
      fc.property(fc.oneof(hostileJson, fc.record({ events: fc.array(hostileJson, { maxLength: 5 }) }), fc.record({ events: fc.array(fc.record({ action: fc.constantFrom('push', 'delete'), timestamp: fc.string(), target: hostileJson }), { maxLength: 4 }) })), (body) => {
        onlyOurErrors(() => parseEnvelope(body), UsageError);
        onlyOurErrors(() => parseEnvelopeText(JSON.stringify(body) ?? ''), UsageError);
        expect(untouchedPrototype()).toBe(true);
      }),
    );
    check(fc.property(fc.string({ maxLength: 200 }), (text) => onlyOurErrors(() => parseEnvelopeText(text), UsageError)));
  });

  it('deep nesting and huge values in any field: parsed or refused with UsageError', () => {
    check(
      fc.property(fc.integer({ min: 1, max: 50_000 }), fc.constantFrom('array', 'object') as fc.Arbitrary<'array' | 'object'>, fc.constantFrom('request', 'target', '__proto__', 'events'), (depth, kind, field) => {
        const ev = `{"action":"push","timestamp":"2026-01-01T00:00:00Z","target":{"repository":"a/b","tag":"v1","digest":"sha256:${'a'.repeat(64)}"}}`;
        const text = field === 'events' ? `{"events":${nested(depth, kind)}}` : `{"events":[${ev.replace(/}$/, `,${JSON.stringify(field)}:${nested(depth, kind)}}`)}]}`;
        onlyOurErrors(() => parseEnvelopeText(text), UsageError);
      }),
      Math.min(RUNS, 100),
    );
    const huge = `{"events":[{"action":"push","timestamp":"2026-01-01T00:00:00Z","target":{"repository":"a/b","tag":"v1","digest":"sha256:${'a'.repeat(64)}","url":"${'x'.repeat(20_000)}"}}]}`;
    expect(() => parseEnvelopeText(huge)).toThrow(UsageError);
    const many = `{"events":[${Array.from({ length: 1001 }, () => '{"action":"pull"}').join(',')}]}`;
    expect(() => parseEnvelopeText(many)).toThrow(UsageError);
  });

  it('a body that is not UTF-8 is refused with UsageError before parsing', async () => {
    const samples = fc.sample(fc.tuple(fc.array(eventArb, { minLength: 1, maxLength: 3 }), fc.nat(), fc.constantFrom(...INVALID_UTF8)), Math.min(RUNS, 100));
    for (const [events, at, bad] of samples) {
      const b = Buffer.from(`{"events":[${events.map((e) => wire(e, 'id', {})).join(',')}]}`);
      const i = at % (b.length + 1);
      const req = new Request('http://127.0.0.1/api/v1/events', { method: 'POST', headers: { 'content-type': EVENTS_MEDIA_TYPE }, body: Buffer.concat([b.subarray(0, i), bad, b.subarray(i)]) });
      await expect(readBodyText(req, 1024 * 1024)).rejects.toBeInstanceOf(UsageError);
    }
    inputsTried += samples.length;
  });
});

// ---------------------------------------------------------------------------------------------

describe('token realms', () => {
  const linkLocal = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }));
  const spellings = ([c, d]: [number, number]): string[] => {
    const n = (169 * 2 ** 24 + 254 * 2 ** 16 + c * 256 + d) >>> 0;
    const hex4 = (x: number): string => x.toString(16);
    return [
      `169.254.${c}.${d}`,
      `169.254.${c}.${d}.`,
      String(n),
      `0x${n.toString(16)}`,
      `[::ffff:169.254.${c}.${d}]`,
      `[::ffff:${hex4(0xa9fe)}:${hex4(c * 256 + d)}]`,
      `[0:0:0:0:0:ffff:169.254.${c}.${d}]`,
      `[64:ff9b::169.254.${c}.${d}]`,
    ];
  };

  it('every spelling of a link-local IPv4 address is refused as a realm, over http and https', () => {
    check(
      fc.property(linkLocal, fc.constantFrom('http', 'https'), ([c, d], scheme) => {
        for (const host of spellings([c, d])) {
          expect(() => checkRealm(`${scheme}://${host}/jwt/auth`, 'http://127.0.0.1:5000'), host).toThrow(TagtrailError);
        }
      }),
    );
    for (const host of ['metadata', 'metadata.google.internal', 'METADATA.GOOGLE.INTERNAL.', 'instance-data', '[fe80::1]', '[febf::1]', '[fd00:ec2::254]', '100.100.100.200']) {
      expect(() => checkRealm(`https://${host}/token`, 'https://registry.example.com'), host).toThrow(TagtrailError);
    }
  });

  it('an https registry never gets an http realm; any realm string is accepted or refused with our errors', () => {
    check(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), fc.webUrl({ validSchemes: ['http', 'https', 'ftp', 'file', 'javascript'], withQueryParameters: true })), (realm) => {
        let url: URL | undefined;
        onlyOurErrors(() => (url = checkRealm(realm, 'https://registry.example.com')));
        if (url) {
          expect(url.protocol).toBe('https:');
          expect(isLinkLocalOrMetadataHost(url.hostname.replace(/^\[|\]$/g, '').toLowerCase())).toBe(false);
        }
      }),
    );
  });

  it('ordinary realms stay allowed: another host (as GitLab.com uses), another port, http beside an http registry', () => {
    expect(checkRealm('https://gitlab.com/jwt/auth', 'https://registry.gitlab.com').host).toBe('gitlab.com');
    expect(checkRealm('http://127.0.0.1:9/jwt/auth', 'http://127.0.0.1:5000').port).toBe('9');
    expect(checkRealm('https://10.0.0.5/jwt/auth', 'http://10.0.0.5:5000').hostname).toBe('10.0.0.5');
    expect(checkRealm('https://[fd12::1]/jwt/auth', 'https://registry.example.com').hostname).toBe('[fd12::1]');
  });
});
