import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.js';
import { applyAnnotationChanges, diffAnnotations, isEmptyDiff, parseAnnotationArg, validateAnnotationKey, validateAnnotationValue } from './annotations.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof InvalidInputError ? e.code : 'OTHER';
  }
  return undefined;
}

describe('annotation keys', () => {
  it.each(['com.gitlab.ci.pipeline_id', 'org.opencontainers.image.source', 'vnd.docker.reference.digest', 'io.example-co.Team'])('accepts %s', (k) => {
    expect(code(() => validateAnnotationKey(k))).toBeUndefined();
  });
  it.each(['', 'nodots', '.com.x', 'com..x', 'com.x.', 'Com.x', 'com.x y', 'com.x=y', '__proto__', 'constructor', 'a'.repeat(300) + '.b'])('refuses %j', (k) => {
    expect(code(() => validateAnnotationKey(k))).toBe('INVALID_ANNOTATION');
  });
});

describe('annotation values', () => {
  it('accepts text with newlines, tabs, quotes and unicode', () => {
    expect(code(() => validateAnnotationValue('com.x.y', 'a\n\tb "c" \'d\' $(e) ünï 🚀'))).toBeUndefined();
  });
  it.each([['nul', 'a\u0000b'], ['escape', '\u001b[31m'], ['lone surrogate', 'a\ud800b'], ['too long', 'x'.repeat(16 * 1024 + 1)]])('refuses %s', (_n, v) => {
    expect(code(() => validateAnnotationValue('com.x.y', v))).toBe('INVALID_ANNOTATION');
  });
});

describe('parseAnnotationArg', () => {
  it('splits at the first =', () => {
    expect(parseAnnotationArg('com.x.y=a=b')).toEqual(['com.x.y', 'a=b']);
    expect(parseAnnotationArg('com.x.y=')).toEqual(['com.x.y', '']);
  });
  it('refuses a missing =', () => {
    expect(code(() => parseAnnotationArg('com.x.y'))).toBe('INVALID_ANNOTATION');
  });
});

describe('applyAnnotationChanges', () => {
  it('keeps order, overrides, appends sorted, removes, and keeps setIfAbsent keys', () => {
    const out = applyAnnotationChanges(
      { 'z.a.b': '1', 'org.opencontainers.image.created': 'old', 'x.a.b': 'gone' },
      { set: { 'z.a.b': '2', 'c.a.b': '3', 'b.a.b': '4' }, setIfAbsent: { 'org.opencontainers.image.created': 'new', 'd.a.b': '5' }, remove: ['x.a.b'] },
    );
    expect(Object.entries(out)).toEqual([
      ['z.a.b', '2'],
      ['org.opencontainers.image.created', 'old'],
      ['b.a.b', '4'],
      ['c.a.b', '3'],
      ['d.a.b', '5'],
    ]);
  });
  it('treats __proto__ as data', () => {
    const out = applyAnnotationChanges(JSON.parse('{"__proto__": "x"}'), { set: {}, remove: [] });
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
  it('diffs', () => {
    const d = diffAnnotations({ 'a.b.c': '1', 'a.b.d': '2' }, { 'a.b.c': '1', 'a.b.d': '3', 'a.b.e': '4' });
    expect(d.added).toEqual({ 'a.b.e': '4' });
    expect(d.changed).toEqual({ 'a.b.d': { from: '2', to: '3' } });
    expect(isEmptyDiff(diffAnnotations({ 'a.b.c': '1' }, { 'a.b.c': '1' }))).toBe(true);
  });
});
