import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.js';
import { parseConfigLabels } from './config.js';

const bytes = (s: string) => Buffer.from(s, 'utf8');

describe('parseConfigLabels', () => {
  it('returns the string labels of config.Labels', () => {
    const labels = parseConfigLabels(bytes(JSON.stringify({ config: { Labels: { a: 'b', n: 1, c: '' } } })), 'x');
    expect({ ...labels }).toEqual({ a: 'b', c: '' });
  });

  it('returns no labels when the config has none', () => {
    for (const doc of [{}, { config: null }, { config: {} }, { config: { Labels: null } }, { config: { Labels: ['a'] } }]) {
      expect(Object.keys(parseConfigLabels(bytes(JSON.stringify(doc)), 'x'))).toEqual([]);
    }
  });

  it('keeps a label named __proto__ as data', () => {
    const labels = parseConfigLabels(bytes('{"config":{"Labels":{"__proto__":"x"}}}'), 'x');
    expect(Object.keys(labels)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('refuses what is not a JSON object with INVALID_MANIFEST', () => {
    for (const doc of ['not json', '[]', '"s"', '1', 'null']) {
      const err = (() => {
        try {
          parseConfigLabels(bytes(doc), 'repo@sha256:1');
          return undefined;
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(InvalidInputError);
      expect((err as InvalidInputError).code).toBe('INVALID_MANIFEST');
    }
  });

  it('never throws anything but InvalidInputError on any bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), (s) => {
        try {
          parseConfigLabels(bytes(s), 'x');
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidInputError);
        }
      }),
    );
  });
});
