// The closed set of errors tagtrail raises. Callers match on the class or on `code`, never on
// message text. Exit codes and HTTP statuses are mapped once, here.

export type ErrorCode =
  | 'USAGE'
  | 'INVALID_REFERENCE'
  | 'INVALID_ANNOTATION'
  | 'INVALID_MANIFEST'
  | 'UNSUPPORTED'
  | 'UNREADABLE_MANIFEST'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'DIGEST_MISMATCH'
  | 'REGISTRY'
  | 'NETWORK'
  | 'PAYLOAD_TOO_LARGE'
  | 'STORE';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_CONFLICT = 3;

export abstract class TagtrailError extends Error {
  abstract readonly code: ErrorCode;
  abstract readonly exitCode: number;
  abstract readonly httpStatus: number;
  /** A hint on how to fix the problem, shown after the message. */
  readonly hint: string | undefined;

  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** Bad flags or arguments. */
export class UsageError extends TagtrailError {
  readonly code = 'USAGE';
  readonly exitCode = EXIT_USAGE;
  readonly httpStatus = 400;
}

/** Input that is well-formed enough to read but not valid: references, annotations, manifests. */
export class InvalidInputError extends TagtrailError {
  readonly exitCode = EXIT_USAGE;
  readonly httpStatus = 400;
  constructor(
    readonly code: 'INVALID_REFERENCE' | 'INVALID_ANNOTATION' | 'INVALID_MANIFEST' | 'UNSUPPORTED',
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/**
 * A manifest the registry serves that tagtrail cannot read: Docker schema 1, over 4 MiB, not
 * JSON, nested too deep, an unknown media type, an index too large or nested. The registry's
 * content, not the user's input: exit 1, HTTP 502.
 */
export class UnreadableManifestError extends TagtrailError {
  readonly code = 'UNREADABLE_MANIFEST';
  readonly exitCode = EXIT_FAILURE;
  readonly httpStatus = 502;
}

/** The registry refused our credentials (401) or our access (403). */
export class AuthError extends TagtrailError {
  readonly exitCode = EXIT_FAILURE;
  readonly httpStatus: number;
  constructor(
    readonly code: 'UNAUTHORIZED' | 'DENIED',
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
    this.httpStatus = code === 'UNAUTHORIZED' ? 401 : 403;
  }
}

export class NotFoundError extends TagtrailError {
  readonly code = 'NOT_FOUND';
  readonly exitCode = EXIT_FAILURE;
  readonly httpStatus = 404;
}

/** Someone else changed the tag between our read and our write. */
export class ConflictError extends TagtrailError {
  readonly code = 'CONFLICT';
  readonly exitCode = EXIT_CONFLICT;
  readonly httpStatus = 409;
}

/** Bytes did not hash to the digest they were supposed to have. */
export class DigestMismatchError extends TagtrailError {
  readonly code = 'DIGEST_MISMATCH';
  readonly exitCode = EXIT_FAILURE;
  readonly httpStatus = 502;
}

/** The registry answered with an error we cannot recover from. */
export class RegistryError extends TagtrailError {
  readonly code = 'REGISTRY';
  readonly exitCode = EXIT_FAILURE;
  readonly httpStatus = 502;
  constructor(
    message: string,
    readonly status: number,
    readonly registryCodes: readonly string[] = [],
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/** The registry could not be reached, or the connection broke and retries ran out. */
export class NetworkError extends TagtrailError {
  readonly code = 'NETWORK';
  readonly exitCode = EXIT_FAILURE;
  readonly httpStatus = 502;
}

export class PayloadTooLargeError extends TagtrailError {
  readonly code = 'PAYLOAD_TOO_LARGE';
  readonly exitCode = EXIT_USAGE;
  readonly httpStatus = 413;
}

/** The catalog database failed. */
export class StoreError extends TagtrailError {
  readonly code = 'STORE';
  readonly exitCode = EXIT_FAILURE;
  readonly httpStatus = 500;
}

export function isTagtrailError(err: unknown): err is TagtrailError {
  return err instanceof TagtrailError;
}

/** One line for a terminal: the message, then the hint. */
export function formatError(err: TagtrailError): string {
  return err.hint ? `error: ${err.message}\nhint: ${err.hint}` : `error: ${err.message}`;
}
