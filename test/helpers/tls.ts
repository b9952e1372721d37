// A private CA and a server certificate for 127.0.0.1 and localhost, made with openssl, for a
// registry served over TLS: what an internal registry signed by a company CA looks like.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  /** The private CA's certificate (PEM): what TAGTRAIL_CA_FILE and curl --cacert take. */
  caCertificate: string;
  /** The server certificate (PEM) for 127.0.0.1, ::1 and localhost, signed by the CA. */
  certificate: string;
  /** The server's private key (PEM). */
  key: string;
}

/** Writes ca.pem, server.pem and server-key.pem into dir. */
export async function makeCertificates(dir: string, commonName = 'tagtrail test CA'): Promise<TestCertificates> {
  const caKey = join(dir, 'ca-key.pem');
  const caCertificate = join(dir, 'ca.pem');
  const key = join(dir, 'server-key.pem');
  const csr = join(dir, 'server.csr');
  const certificate = join(dir, 'server.pem');
  const ext = join(dir, 'server.ext');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caCertificate, '-days', '2', '-subj', `/CN=${commonName}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=127.0.0.1']);
  await writeFile(ext, 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', caCertificate, '-CAkey', caKey, '-CAcreateserial', '-out', certificate, '-days', '2', '-extfile', ext]);
  return { caCertificate, certificate, key };
}
