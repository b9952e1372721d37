import { describe, expect, it } from 'vitest';
import { UsageError } from '../../errors.js';
import { gitlabUrlsFrom, parseGitlabUrls, safeHref } from './links.js';

const gitlab = parseGitlabUrls(['https://gitlab.com']);

describe('safeHref', () => {
  it('links http(s) URLs on an allowed server, in normal form', () => {
    expect(safeHref('https://gitlab.com/group/app/-/pipelines/9001', gitlab)).toBe('https://gitlab.com/group/app/-/pipelines/9001');
    expect(safeHref('HTTPS://GITLAB.COM/group/app', gitlab)).toBe('https://gitlab.com/group/app');
    expect(safeHref('https://gitlab.com:443/group/app', gitlab)).toBe('https://gitlab.com/group/app');
    expect(safeHref('https://gitlab.com', gitlab)).toBe('https://gitlab.com/');
    expect(safeHref('https://gitlab.com/group/app/-/tree/feature/a%20b?x=1#L2', gitlab)).toBe('https://gitlab.com/group/app/-/tree/feature/a%20b?x=1#L2');
  });

  it.each([
    ['javascript:alert(1)'],
    ['JAVASCRIPT:alert(1)'],
    ['  javascript:alert(1)'],
    ['java\tscript:alert(1)'],
    ['javascript://gitlab.com/%0aalert(1)'],
    ['data:text/html,<script>alert(1)</script>'],
    ['vbscript:msgbox(1)'],
    ['file:///etc/passwd'],
    ['ftp://gitlab.com/x'],
    ['//evil.com/x'],
    ['//gitlab.com/x'],
    ['/group/app'],
    ['gitlab.com/group/app'],
    ['https:gitlab.com/group/app'],
    ['https:/gitlab.com/group/app'],
    ['https:///gitlab.com/group/app'],
    ['https:\\\\evil.com'],
    ['https://gitlab.com\\@evil.com'],
    ['https://gitlab.com.evil.com/x'],
    ['https://evilgitlab.com/x'],
    ['https://evil.com/https://gitlab.com/x'],
    ['https://evil.com?https://gitlab.com'],
    ['https://evil.com#https://gitlab.com'],
    ['https://user@gitlab.com/x'],
    ['https://user:pass@gitlab.com/x'],
    ['https://gitlab.com@evil.com/x'],
    ['https://gitlab.com:444/x'],
    ['http://gitlab.com/x'],
    ['https://gitlab.com./x'],
    ['https://gitlаb.com/x'], // Cyrillic а
    ['https://xn--gitlb-6ve.com/x'], // the same, as punycode
    ['https://gitlab。com/x'], // ideographic full stop, which the parser folds to '.'
    ['https://gitlab．com/x'], // fullwidth full stop
    ['https://ｇitlab.com/x'], // fullwidth g, which the parser folds to 'g'
    ['https://gitlab.com\u200b/x'], // zero-width space
    ['https://gitlab.com\u202e/x'], // right-to-left override
    ['https://gitlab.com\u00a0/x'],
    ['https://gitlab.com/\nx'],
    ['\u0000https://gitlab.com/x'],
    ['https://gitlab.com/x '],
    ['https://[::1]/x'],
    ['https://127.0.0.1/x'],
    [''],
    [`https://gitlab.com/${'a'.repeat(5000)}`],
  ])('leaves %j as text', (url) => {
    expect(safeHref(url, gitlab)).toBeUndefined();
  });

  it('refuses non-strings', () => {
    expect(safeHref(undefined, gitlab)).toBeUndefined();
    expect(safeHref(null, gitlab)).toBeUndefined();
    expect(safeHref({ toString: () => 'https://gitlab.com/' }, gitlab)).toBeUndefined();
  });

  it('links nothing when no server is allowed', () => {
    expect(safeHref('https://gitlab.com/x', [])).toBeUndefined();
  });

  it('matches the scheme and port of each server exactly', () => {
    const servers = parseGitlabUrls(['http://gitlab.internal:8929', 'https://gitlab.example.com']);
    expect(safeHref('http://gitlab.internal:8929/g/p', servers)).toBe('http://gitlab.internal:8929/g/p');
    expect(safeHref('https://gitlab.internal:8929/g/p', servers)).toBeUndefined();
    expect(safeHref('http://gitlab.internal/g/p', servers)).toBeUndefined();
    expect(safeHref('https://gitlab.example.com/g/p', servers)).toBe('https://gitlab.example.com/g/p');
    expect(safeHref('https://gitlab.com/g/p', servers)).toBeUndefined();
  });

  it('keeps a server under a relative URL to its path, after dot segments are resolved', () => {
    const servers = parseGitlabUrls(['https://example.com/gitlab/']);
    expect(safeHref('https://example.com/gitlab/g/p', servers)).toBe('https://example.com/gitlab/g/p');
    expect(safeHref('https://example.com/gitlab', servers)).toBe('https://example.com/gitlab');
    expect(safeHref('https://example.com/gitlabx/g', servers)).toBeUndefined();
    expect(safeHref('https://example.com/other', servers)).toBeUndefined();
    expect(safeHref('https://example.com/gitlab/../other', servers)).toBeUndefined();
    expect(safeHref('https://example.com/gitlab/%2e%2e/other', servers)).toBeUndefined();
  });
});

describe('parseGitlabUrls', () => {
  it('splits commas, trims, drops duplicates and trailing slashes', () => {
    expect(parseGitlabUrls(['https://gitlab.com/, https://gitlab.example.com', 'https://gitlab.com'])).toEqual([
      { origin: 'https://gitlab.com', pathPrefix: '' },
      { origin: 'https://gitlab.example.com', pathPrefix: '' },
    ]);
  });

  it.each([['javascript:alert(1)'], ['gitlab.com'], ['ftp://gitlab.com'], ['https://u:p@gitlab.com'], ['https://gitlab.com/?x'], ['https://gitlab.com/#x'], ['https://gitlab .com']])(
    'refuses %j',
    (value) => {
      expect(() => parseGitlabUrls([value])).toThrow(UsageError);
    },
  );
});

describe('gitlabUrlsFrom', () => {
  it('takes the flags, else the environment, else gitlab.com, and checks them', () => {
    expect(gitlabUrlsFrom(['https://a.example'], 'https://b.example')).toEqual(['https://a.example']);
    expect(parseGitlabUrls(gitlabUrlsFrom([], 'https://b.example,https://c.example'))).toEqual([
      { origin: 'https://b.example', pathPrefix: '' },
      { origin: 'https://c.example', pathPrefix: '' },
    ]);
    expect(gitlabUrlsFrom(undefined, '  ')).toEqual(['https://gitlab.com']);
    expect(() => gitlabUrlsFrom(['javascript:alert(1)'], undefined)).toThrow(UsageError);
    expect(() => gitlabUrlsFrom([' , '], undefined)).toThrow(UsageError);
  });
});
