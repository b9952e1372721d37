// The closed set of errors tagtrail raises. Callers match on the class or on `code`, never on
// message text. Each class belongs to a family (whose fault it was); exitCodeFor() and
// httpStatusFor() map them, once, here.

import { inertText } from './inert-text.js';

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
  | 'PAGINATION_LIMIT'
  | 'INVALID_CURSOR'
  | 'STORE';

export const EXIT_OK = 0;
/** An upstream failure: the registry or the network. */
export const EXIT_FAILURE = 1;
/** The user's own input: flags, arguments, references, annotations. */
export const EXIT_USAGE = 2;
/** Another writer changed the tag under us; a CI job may retry. */
export const EXIT_CONFLICT = 3;

/**
 * Whose fault it was. `input`: the user's own input (exit 2, HTTP 400). `upstream`: the registry or
 * the network (exit 1, HTTP 502). `conflict`: a concurrent writer (exit 3, HTTP 409). `store`:
 * the catalog database (exit 1, HTTP 500).
 */
export type ErrorFamily = 'input' | 'upstream' | 'conflict' | 'store';

const FAMILY_EXIT: Readonly<Record<ErrorFamily, number>> = { input: EXIT_USAGE, upstream: EXIT_FAILURE, conflict: EXIT_CONFLICT, store: EXIT_FAILURE };
const FAMILY_HTTP: Readonly<Record<ErrorFamily, number>> = { input: 400, upstream: 502, conflict: 409, store: 500 };

export abstract class TagtrailError extends Error {
  abstract readonly code: ErrorCode;
  abstract readonly family: ErrorFamily;
  /**
   * An HTTP status more precise than the family's, where it means something to an API client
   * (404 for a missing tag, 413 for an oversized body); undefined: the family's status.
   */
  readonly specificHttpStatus: number | undefined = undefined;
  /** A hint on how to fix the problem, shown after the message. */
  readonly hint: string | undefined;

  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** The process exit code for an error of ours: by family, nothing else. */
export function exitCodeFor(err: TagtrailError): number {
  return FAMILY_EXIT[err.family];
}

/** The HTTP status the server answers with: the class's own where it has one, else the family's. */
export function httpStatusFor(err: TagtrailError): number {
  return err.specificHttpStatus ?? FAMILY_HTTP[err.family];
}

/** Bad flags or arguments. */
export class UsageError extends TagtrailError {
  readonly code = 'USAGE';
  readonly family = 'input';
}

/** A page cursor that this server did not hand out, or that belongs to another query. */
export class InvalidCursorError extends UsageError {}

/** Input that is well-formed enough to read but not valid: references, annotations, manifests, page cursors. */
export class InvalidInputError extends TagtrailError {
  readonly family = 'input';
  constructor(
    readonly code: 'INVALID_REFERENCE' | 'INVALID_ANNOTATION' | 'INVALID_MANIFEST' | 'INVALID_CURSOR' | 'UNSUPPORTED',
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/**
/**
 * A manifest the registry serves that tagtrail cannot read: Docker schema 1, over 4 MiB, not
 * JSON, nested too deep, an unknown media type, an index too large or nested. The registry's
 * content, not the user's input: exit 1, HTTP 502.
 */
export class UnreadableManifestError extends TagtrailError {
  readonly code = 'UNREADABLE_MANIFEST';
  readonly family = 'upstream';
}

/**
 * The registry refused our credentials (401) or our access (403). Upstream: the CLI exits 1, and
 * the server answers 502, since its API client is not the one who was refused.
 */
export class AuthError extends TagtrailError {
  readonly family = 'upstream';
  constructor(
    readonly code: 'UNAUTHORIZED' | 'DENIED',
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/** No such image, tag or endpoint. Upstream when the registry says so (exit 1); the API answers 404. */
export class NotFoundError extends TagtrailError {
  readonly code = 'NOT_FOUND';
  readonly family = 'upstream';
  override readonly specificHttpStatus = 404;
}

/** Someone else changed the tag between our read and our write. */
export class ConflictError extends TagtrailError {
  readonly code = 'CONFLICT';
  readonly family = 'conflict';
}

/** Bytes did not hash to the digest they were supposed to have. */
export class DigestMismatchError extends TagtrailError {
  readonly code = 'DIGEST_MISMATCH';
  readonly family = 'upstream';
}

/** The registry answered with an error we cannot recover from. */
export class RegistryError extends TagtrailError {
  readonly code = 'REGISTRY';
  readonly family = 'upstream';
  constructor(
    message: string,
    readonly status: number,
    readonly registryCodes: readonly string[] = [],
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/** A registry list (tags, repositories) went on for more pages than tagtrail follows. */
export class PaginationLimitError extends TagtrailError {
  readonly code = 'PAGINATION_LIMIT';
  readonly family = 'upstream';
}

/** The registry could not be reached, or the connection broke and retries ran out. */
export class NetworkError extends TagtrailError {
  readonly code = 'NETWORK';
  readonly family = 'upstream';
}

/** A body over a limit: an annotation set or webhook body we were given (input; the API answers 413). */
export class PayloadTooLargeError extends TagtrailError {
  readonly code = 'PAYLOAD_TOO_LARGE';
  readonly family = 'input';
  override readonly specificHttpStatus = 413;
}

/** The catalog database failed. */
export class StoreError extends TagtrailError {
  readonly code = 'STORE';
  readonly family = 'store';
}

export function isTagtrailError(err: unknown): err is TagtrailError {
  return err instanceof TagtrailError;
}

/** One line for a terminal: the message, then the hint; registry text in them is made inert. */
export function formatError(err: TagtrailError): string {
  return err.hint ? `error: ${inertText(err.message)}\nhint: ${inertText(err.hint)}` : `error: ${inertText(err.message)}`;
}
