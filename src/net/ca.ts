// The roots tagtrail trusts, for every HTTP client it has (dispatcher.ts, node-http.ts).
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { UsageError } from '../errors.js';
import { CA_FILE_VARIABLE } from './tls-errors.js';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The trusted roots: Node's bundled Mozilla set plus every certificate in TAGTRAIL_CA_FILE, or
 * undefined (Node's defaults, NODE_EXTRA_CA_CERTS included) when the variable is unset.
 */
export function trustedCertificates(env: Env): string[] | undefined {
  const file = env[CA_FILE_VARIABLE]?.trim();
  if (!file) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${CA_FILE_VARIABLE}: cannot read ${JSON.stringify(file.slice(0, 200))} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
      hint: `point ${CA_FILE_VARIABLE} at a PEM file with the certificate of your internal CA`,
    });
  }
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (certs.length === 0) {
    throw new UsageError(`${CA_FILE_VARIABLE}: ${JSON.stringify(file.slice(0, 200))} holds no PEM certificate`, {
      hint: 'the file must contain one or more "-----BEGIN CERTIFICATE-----" blocks',
    });
  }
  return [...rootCertificates, ...certs];
}
