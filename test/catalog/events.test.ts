// Notification envelopes → catalog events: what counts, what is ignored, and that a bad
// envelope is refused as a whole, naming the field.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseEnvelope, parseEnvelopeText, parseTimestamp } from '../../src/catalog/events.js';

const D1 = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;
const TS = '2026-11-26T17:07:44.765460545Z';

function ev(action: string, target: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'e1', timestamp: TS, action, target, request: { method: 'PUT' }, actor: {}, source: { addr: 'x' }, ...extra };
}

function thrown(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error('did not throw');
}

describe('parseEnvelope', () => {
  it('turns a tag push into tag-push, keeping milliseconds of a nanosecond timestamp', () => {
    const { events, ignored } = parseEnvelope({
      events: [ev('push', { mediaType: 'application/vnd.oci.image.index.v1+json', digest: D1, repository: 'group/app', tag: 'v1', url: 'http://evil.example/x' })],
    });
    expect(ignored).toBe(0);
    expect(events).toEqual([{ kind: 'tag-push', id: 'e1', at: new Date('2026-11-26T17:07:44.765Z'), repository: 'group/app', tag: 'v1', digest: D1, mediaType: 'application/vnd.oci.image.index.v1+json' }]);
    // The url is not carried along: nothing downstream can fetch it.
    expect(JSON.stringify(events)).not.toContain('evil');
  });

  it('turns deletes into manifest-delete and tag-delete, as distribution sends them', () => {
    const { events } = parseEnvelope({ events: [ev('delete', { digest: D1, repository: 'group/app' }), ev('delete', { repository: 'group/app', tag: 'v1' })] });
    expect(events.map((e) => e.kind)).toEqual(['manifest-delete', 'tag-delete']);
  });

  it('ignores pulls, mounts, blob pushes and manifests pushed by digest alone', () => {
    const { events, ignored } = parseEnvelope({
      events: [
        ev('pull', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D1, repository: 'group/app', tag: 'v1' }),
        ev('mount', { mediaType: 'application/octet-stream', digest: D1, repository: 'group/app' }),
        ev('push', { mediaType: 'application/octet-stream', digest: D1, repository: 'group/app' }),
        ev('push', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D2, repository: 'group/app' }),
        ev('something-new', {}),
      ],
    });
    expect(events).toEqual([]);
    expect(ignored).toBe(5);
  });

  it('refuses the whole envelope for one bad event, naming the field', () => {
    const good = ev('push', { digest: D1, repository: 'group/app', tag: 'v1' });
    expect(thrown(() => parseEnvelope({ events: [good, ev('push', { digest: D1, repository: '../etc/passwd', tag: 'v1' })] })).message).toContain('events[1].target.repository');
    expect(thrown(() => parseEnvelope({ events: [ev('push', { digest: D1, repository: 'Group/App', tag: 'v1' })] })).message).toContain('target.repository');
    expect(thrown(() => parseEnvelope({ events: [ev('push', { digest: 'sha256:zz', repository: 'a', tag: 'v1' })] })).message).toContain('events[0].target.digest');
    expect(thrown(() => parseEnvelope({ events: [ev('push', { repository: 'a', tag: 'v1' })] })).message).toContain('target.digest');
    expect(thrown(() => parseEnvelope({ events: [ev('push', { digest: D1, repository: 'a', tag: '-bad' })] })).message).toContain('target.tag');
    expect(thrown(() => parseEnvelope({ events: [ev('delete', { repository: 'a' })] })).message).toContain('neither a tag nor a digest');
    expect(thrown(() => parseEnvelope({ events: [ev('push', { digest: D1, repository: 'a', tag: 'v1' }, { timestamp: 'yesterday' })] })).message).toContain('events[0].timestamp');
    expect(thrown(() => parseEnvelope({ events: [ev('push', { digest: D1, repository: 'a', tag: 'v1' }, { timestamp: undefined })] })).message).toContain('timestamp is missing');
  });

  it('refuses what is not an envelope', () => {
    expect(thrown(() => parseEnvelope(null)).message).toContain('invalid notification envelope');
    expect(thrown(() => parseEnvelope({ events: 'x' })).message).toContain('events');
    expect(thrown(() => parseEnvelope({ events: [{ target: {} }] })).message).toContain('events[0].action');
    expect(thrown(() => parseEnvelope({ events: [ev('push', { repository: 5 })] })).message).toContain('events[0].target.repository');
    expect(thrown(() => parseEnvelopeText('{"events": [')).message).toContain('not valid JSON');
    expect(thrown(() => parseEnvelope({ events: new Array(1001).fill(ev('pull', {})) })).message).toContain('events');
  });

  it('never throws anything but UsageError on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          parseEnvelope(value);
        } catch (err) {
          if (!(err instanceof UsageError)) throw err;
        }
        try {
          parseEnvelope({ events: [value] });
        } catch (err) {
          if (!(err instanceof UsageError)) throw err;
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseTimestamp', () => {
  it('reads RFC 3339 with any fraction and offsets', () => {
    expect(parseTimestamp('2026-01-02T03:04:05Z').toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(parseTimestamp('2026-01-02T03:04:05.1Z').toISOString()).toBe('2026-01-02T03:04:05.100Z');
    expect(parseTimestamp('2026-01-02T03:04:05.123456789+02:00').toISOString()).toBe('2026-01-02T01:04:05.123Z');
    expect(() => parseTimestamp('2026-01-02')).toThrow(UsageError);
    expect(() => parseTimestamp('2026-13-45T99:99:99Z')).toThrow(UsageError);
  });
});
