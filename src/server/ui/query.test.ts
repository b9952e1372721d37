import { describe, expect, it } from 'vitest';
import { describeTerm, parseSearch, type SearchTerm } from './query.js';

function terms(q: string, host?: string): SearchTerm[] {
  const r = parseSearch(q, host);
  if (!r.ok) throw new Error(`expected ${JSON.stringify(q)} to parse: ${r.error}`);
  return r.terms;
}

describe('parseSearch', () => {
  it('reads 7 to 64 hex digits as a commit prefix, lower-cased; short ones may also be a ref', () => {
    expect(terms('4f2c1a9')).toEqual([
      { kind: 'commit', prefix: '4f2c1a9' },
      { kind: 'ref', name: '4f2c1a9' },
    ]);
    expect(terms(' 4F2C1A9E8B7D6C5F4E3D2C1B0A9F8E7D6C5B4A39 ')).toEqual([{ kind: 'commit', prefix: '4f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39' }]);
    expect(terms('a'.repeat(64))).toEqual([{ kind: 'commit', prefix: 'a'.repeat(64) }]);
  });

  it('reads digits as a pipeline id, and 7 or more of them as a commit prefix too', () => {
    expect(terms('9001')).toEqual([{ kind: 'pipeline', id: '9001' }]);
    expect(terms('1234567')).toEqual([
      { kind: 'pipeline', id: '1234567' },
      { kind: 'commit', prefix: '1234567' },
    ]);
  });

  it('reads fewer than 7 hex letters as a name, not a commit', () => {
    expect(terms('cafe')).toEqual([
      { kind: 'ref', name: 'cafe' },
      { kind: 'repository', name: 'cafe' },
    ]);
  });

  it('reads an image digest', () => {
    expect(terms(`sha256:${'AB'.repeat(32)}`)).toEqual([{ kind: 'digest', digest: `sha256:${'ab'.repeat(32)}` }]);
  });

  it('reads key=value with a reverse-DNS key as an annotation filter', () => {
    expect(terms('com.gitlab.ci.branch=main')).toEqual([{ kind: 'annotation', key: 'com.gitlab.ci.branch', value: 'main' }]);
    expect(terms('org.opencontainers.image.source=https://gitlab.com/g/p?a=b')).toEqual([
      { kind: 'annotation', key: 'org.opencontainers.image.source', value: 'https://gitlab.com/g/p?a=b' },
    ]);
    expect(terms('com.example.team=')).toEqual([{ kind: 'annotation', key: 'com.example.team', value: '' }]);
  });

  it('reads other key=value text as a ref name', () => {
    expect(terms('Team=payments')).toEqual([{ kind: 'ref', name: 'Team=payments' }]);
  });

  it('reads a name as a ref and a repository, and a reverse-DNS word as an annotation key as well', () => {
    expect(terms('main')).toEqual([
      { kind: 'ref', name: 'main' },
      { kind: 'repository', name: 'main' },
    ]);
    expect(terms('group/App')).toEqual([
      { kind: 'ref', name: 'group/App' },
      { kind: 'repository', name: 'group/app' },
    ]);
    expect(terms('feature/ünïcode')).toEqual([{ kind: 'ref', name: 'feature/ünïcode' }]);
    expect(terms('com.example.team')).toEqual([
      { kind: 'ref', name: 'com.example.team' },
      { kind: 'repository', name: 'com.example.team' },
      { kind: 'annotation', key: 'com.example.team' },
    ]);
  });

  it('takes the registry host off a repository name', () => {
    expect(terms('registry.example.com:5000/group/app', 'registry.example.com:5000')).toContainEqual({ kind: 'repository', name: 'group/app' });
  });

  it('lets a prefix force one reading', () => {
    expect(terms('ref:1234567')).toEqual([{ kind: 'ref', name: '1234567' }]);
    expect(terms('commit:4f2c')).toEqual([{ kind: 'commit', prefix: '4f2c' }]);
    expect(terms('pipeline:#9001')).toEqual([{ kind: 'pipeline', id: '9001' }]);
    expect(terms('repo:Group/App/')).toEqual([{ kind: 'repository', name: 'group/app' }]);
    expect(terms(`digest:${'c'.repeat(64)}`)).toEqual([{ kind: 'digest', digest: `sha256:${'c'.repeat(64)}` }]);
    expect(terms('key:team=payments')).toEqual([{ kind: 'annotation', key: 'team', value: 'payments' }]);
    expect(terms('KEY:team')).toEqual([{ kind: 'annotation', key: 'team' }]);
  });

  it('explains what it cannot read', () => {
    for (const q of ['commit:xyz', 'commit:abc', 'pipeline:abc', 'digest:123', 'ref:', 'key:=x', 'a'.repeat(513), 'a\u0000b', 'line\nbreak']) {
      const r = parseSearch(q);
      expect(r.ok, q).toBe(false);
      if (!r.ok) expect(r.error).not.toBe('');
    }
  });

  it('reads an empty box as no search', () => {
    expect(terms('   ')).toEqual([]);
  });

  it('keeps hostile text as it is, for the page to escape', () => {
    expect(terms('<script>alert(1)</script>')).toEqual([{ kind: 'ref', name: '<script>alert(1)</script>' }]);
  });
});

describe('describeTerm', () => {
  it('says what each term looks for', () => {
    expect(describeTerm({ kind: 'commit', prefix: '4f2c1a9' })).toBe('Commits starting with 4f2c1a9');
    expect(describeTerm({ kind: 'pipeline', id: '9001' })).toBe('Pipeline #9001');
    expect(describeTerm({ kind: 'annotation', key: 'a.b' })).toBe('Images with the annotation a.b');
  });
});
