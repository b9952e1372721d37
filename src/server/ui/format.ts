// Small text formats for the pages. Pure: the clock is passed in.
import type { Platform } from '../../catalog/types.js';

const UNITS: readonly (readonly [Intl.RelativeTimeFormatUnit, number])[] = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "3 hours ago", "yesterday", "now"; a time in the future (clock skew) reads "in 2 minutes". */
export function relativeTime(at: Date, now: Date): string {
  const seconds = Math.round((at.getTime() - now.getTime()) / 1000);
  if (!Number.isFinite(seconds)) return 'at an unknown time';
  if (Math.abs(seconds) < 45) return 'just now';
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') {
      return relative.format(Math.trunc(seconds / size), unit);
    }
  }
  return relative.format(seconds, 'second');
}

/** "2026-11-26 09:00:00 UTC", for the title of a relative time. */
export function absoluteTime(at: Date): string {
  if (Number.isNaN(at.getTime())) return 'unknown';
  return `${at.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** sha256:4f2c1a9e8b7d… → 4f2c1a9e8b7d (12 hex digits, as docker shows image ids). */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return digest.slice(colon + 1, colon + 13);
}

/** The first 8 characters of a commit SHA, as GitLab shows them. */
export function shortSha(sha: string): string {
  return sha.slice(0, 8);
}

export function platformText(p: Platform | null | undefined): string {
  if (!p) return 'unknown platform';
  return [p.os, p.architecture, p.variant].filter((s) => s !== undefined && s !== '').join('/');
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** "83%": the share of part in whole, rounded down so that 99.6% never reads 100%. */
export function percent(part: number, whole: number): string {
  if (whole <= 0) return '–';
  return `${Math.floor((100 * part) / whole)}%`;
}

/** The manifest as indented JSON when it parses, else its bytes as UTF-8 text. */
export function prettyJson(raw: Uint8Array): string {
  const text = Buffer.from(raw).toString('utf8');
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
