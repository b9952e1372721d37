import { describe, expect, it } from 'vitest';
import { absoluteTime, formatBytes, percent, platformText, prettyJson, relativeTime, shortDigest, shortSha } from './format.js';

const now = new Date('2026-11-26T12:00:00Z');
const ago = (s: number): Date => new Date(now.getTime() - s * 1000);

describe('relativeTime', () => {
  it.each([
    [10, 'just now'],
    [90, '1 minute ago'],
    [3 * 3600, '3 hours ago'],
    [26 * 3600, 'yesterday'],
    [3 * 86400, '3 days ago'],
    [15 * 86400, '2 weeks ago'],
    [70 * 86400, '2 months ago'],
    [800 * 86400, '2 years ago'],
    [-120, 'in 2 minutes'],
  ])('%i s ago reads %j', (s, text) => {
    expect(relativeTime(ago(s), now)).toBe(text);
  });

  it('copes with an invalid date', () => {
    expect(relativeTime(new Date(NaN), now)).toBe('at an unknown time');
    expect(absoluteTime(new Date(NaN))).toBe('unknown');
  });
});

describe('small formats', () => {
  it('formats times, digests, platforms, sizes and shares', () => {
    expect(absoluteTime(now)).toBe('2026-11-26 12:00:00 UTC');
    expect(shortDigest(`sha256:${'0123456789abcdef'.repeat(4)}`)).toBe('0123456789ab');
    expect(shortSha('4f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39')).toBe('4f2c1a9e');
    expect(platformText({ os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe('linux/arm64/v8');
    expect(platformText(null)).toBe('unknown platform');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(200 * 1024 * 1024)).toBe('200 MiB');
    expect(percent(995, 1000)).toBe('99%');
    expect(percent(0, 0)).toBe('–');
  });

  it('indents JSON and leaves other bytes as text', () => {
    expect(prettyJson(Buffer.from('{"a":1}'))).toBe('{\n  "a": 1\n}');
    expect(prettyJson(Buffer.from('not json'))).toBe('not json');
  });
});
