import { describe, expect, it } from 'vitest';
import * as errors from './errors.js';
import {
  AuthError,
  ConflictError,
  DigestMismatchError,
  InvalidCursorError,
  InvalidInputError,
  NetworkError,
  NotFoundError,
  PaginationLimitError,
  UnreadableManifestError,
  PayloadTooLargeError,
  RegistryError,
  StoreError,
  TagtrailError,
  UsageError,
  exitCodeFor,
  formatError,
  httpStatusFor,
} from './errors.js';

// One instance of every class in the closed set, with the family, exit code and HTTP status it must map to.
const CASES: [TagtrailError, errors.ErrorFamily, number, number][] = [
  [new UsageError('x'), 'input', 2, 400],
  [new InvalidCursorError('x'), 'input', 2, 400],
  [new InvalidInputError('INVALID_REFERENCE', 'x'), 'input', 2, 400],
  [new PayloadTooLargeError('x'), 'input', 2, 413],
  [new AuthError('UNAUTHORIZED', 'x'), 'upstream', 1, 502],
  [new AuthError('DENIED', 'x'), 'upstream', 1, 502],
  [new NotFoundError('x'), 'upstream', 1, 404],
  [new DigestMismatchError('x'), 'upstream', 1, 502],
  [new RegistryError('x', 500), 'upstream', 1, 502],
  [new PaginationLimitError('x'), 'upstream', 1, 502],
  [new NetworkError('x'), 'upstream', 1, 502],
  [new UnreadableManifestError('x'), 'upstream', 1, 502],
  [new ConflictError('x'), 'conflict', 3, 409],
  [new StoreError('x'), 'store', 1, 500],
];

describe('error families', () => {
  it.each(CASES.map(([e, ...rest]) => [e.constructor.name, e, ...rest] as const))('%s: family, exit code and HTTP status', (_name, err, family, exit, status) => {
    expect(err.family).toBe(family);
    expect(exitCodeFor(err)).toBe(exit);
    expect(httpStatusFor(err)).toBe(status);
  });

  it('the table covers every error class the module exports', () => {
    const exported = Object.values(errors as Record<string, unknown>).filter((v): v is typeof TagtrailError => typeof v === 'function' && v.prototype instanceof TagtrailError);
    const covered = new Set(CASES.map(([e]) => e.constructor));
    for (const cls of exported) expect(covered.has(cls as never), cls.name).toBe(true);
  });

  it('input errors exit 2 and answer 400-range; upstream errors exit 1 and answer 502 unless the class is more precise', () => {
    for (const [err] of CASES) {
      if (err.family === 'input') expect([exitCodeFor(err), httpStatusFor(err) >= 400 && httpStatusFor(err) < 500]).toEqual([errors.EXIT_USAGE, true]);
      if (err.family === 'upstream') expect(exitCodeFor(err)).toBe(errors.EXIT_FAILURE);
    }
  });

  it('formatError puts the hint on its own line', () => {
    expect(formatError(new UsageError('bad flag', { hint: 'drop it' }))).toBe('error: bad flag\nhint: drop it');
  });
});
