// TLS verification failures, told apart from other connection failures so the error can say what
// to do (trust the CA) instead of "cannot reach".
import { NetworkError } from '../errors.js';

/** The variable naming a PEM file of CAs trusted besides the default roots (dispatcher.ts reads it). */
export const CA_FILE_VARIABLE = 'TAGTRAIL_CA_FILE';

/** OpenSSL's and Node's codes for a certificate that does not verify. */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function isTlsVerificationCode(code: string | undefined): boolean {
  return code !== undefined && TLS_VERIFY_CODES.has(code);
}

export function tlsVerificationError(host: string, code: string): NetworkError {
  const why = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? 'the certificate does not name this host' : code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID' ? 'the certificate is outside its validity period' : 'the certificate is not signed by a trusted CA';
  return new NetworkError(`TLS verification of ${host} failed (${code}): ${why}`, {
    hint: `if ${host} uses a certificate of an internal CA, set ${CA_FILE_VARIABLE} to a PEM file with that CA's certificate (added to the default roots); tagtrail never skips TLS verification`,
  });
}
