// The OCI 1.1 referrers API, emulated in front of a real registry that lacks it (distribution
// 2.8 has none, and no registry with it is packaged here). Everything is forwarded to the real
// registry, except:
//
// - PUT of a manifest that has a `subject`: forwarded; when the registry stored it (201), the
//   answer gets `OCI-Subject: <subject digest>`, as a registry with the API sends, and the
//   manifest is remembered as a referrer.
// - GET /v2/<name>/referrers/<digest>[?artifactType=]: answered here with an OCI index built from
//   the remembered referrers of that subject, each read back from the real registry at request
//   time (so only manifests the registry really stores are listed), with artifactType and
//   annotations pulled up into the descriptors. Optional pagination (Link: <...>; rel="next") and
//   the artifactType filter (OCI-Filters-Applied: artifactType).
//
// This is an emulation of a registry feature, not a registry: tests that use it say so.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from './ports.js';

export interface ReferrersApiOptions {
  /** http://127.0.0.1:PORT of the registry (or its counting proxy). */
  upstream: string;
  /** Descriptors per page; default all on one page. */
  pageSize?: number;
  /** Apply the artifactType filter (and say so). Default true. */
  filter?: boolean;
}

export interface ReferrersApi {
  host: string;
  url: string;
  /** GET /v2/<name>/referrers/... requests answered, pages included. */
  referrersRequests(): number;
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect']);
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

interface Upstream {
  status: number;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
}

function send(upstream: URL, method: string, path: string, headers: Record<string, string | string[]>, body?: Buffer): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: upstream.hostname, port: upstream.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.once('error', reject);
    });
    r.once('error', reject);
    r.end(body);
  });
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

export async function startReferrersApi(options: ReferrersApiOptions): Promise<ReferrersApi> {
  const upstream = new URL(options.upstream);
  /** repository → subject digest → referrer digests, in order of arrival. */
  const known = new Map<string, Map<string, string[]>>();
  let referrersRequests = 0;

  async function referrers(req: IncomingMessage, res: ServerResponse, repository: string, subject: string, query: URLSearchParams): Promise<void> {
    referrersRequests++;
    const digests = known.get(repository)?.get(subject) ?? [];
    const forward: Record<string, string> = { host: req.headers.host ?? '', accept: 'application/vnd.oci.image.manifest.v1+json' };
    if (req.headers.authorization) forward.authorization = req.headers.authorization;
    const descriptors: Record<string, unknown>[] = [];
    for (const digest of digests) {
      const m = await send(upstream, 'GET', `/v2/${repository}/manifests/${digest}`, forward);
      if (m.status !== 200) continue;
      const json = JSON.parse(m.body.toString('utf8')) as { mediaType?: string; artifactType?: string; config?: { mediaType?: string }; annotations?: Record<string, string> };
      descriptors.push({
        mediaType: json.mediaType ?? 'application/vnd.oci.image.manifest.v1+json',
        digest,
        size: m.body.length,
        ...(json.artifactType ?? json.config?.mediaType ? { artifactType: json.artifactType ?? json.config?.mediaType } : {}),
        ...(json.annotations ? { annotations: json.annotations } : {}),
      });
    }
    const wanted = query.get('artifactType');
    const filter = options.filter !== false && wanted !== null;
    const listed = filter ? descriptors.filter((d) => d.artifactType === wanted) : descriptors;
    const size = options.pageSize ?? (listed.length || 1);
    const page = Number(query.get('page') ?? '0');
    const slice = listed.slice(page * size, (page + 1) * size);
    const headers: Record<string, string> = { 'content-type': OCI_INDEX };
    if (filter) headers['oci-filters-applied'] = 'artifactType';
    if ((page + 1) * size < listed.length) {
      const next = new URLSearchParams(query);
      next.set('page', String(page + 1));
      headers.link = `</v2/${repository}/referrers/${subject}?${next.toString()}>; rel="next"`;
    }
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: slice }));
    headers['content-length'] = String(body.length);
    res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const ref = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(url.pathname);
    if (ref && req.method === 'GET') {
      req.resume();
      return referrers(req, res, ref[1] as string, decodeURIComponent(ref[2] as string), url.searchParams);
    }
    const body = await readAll(req);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    if (body.length > 0) headers['content-length'] = String(body.length);
    const up = await send(upstream, req.method ?? 'GET', req.url ?? '/', headers, body.length > 0 ? body : undefined);
    const out: string[] = [];
    for (let i = 0; i + 1 < up.rawHeaders.length; i += 2) {
      if (!HOP_BY_HOP.has((up.rawHeaders[i] as string).toLowerCase())) out.push(up.rawHeaders[i] as string, up.rawHeaders[i + 1] as string);
    }
    const put = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (put && req.method === 'PUT' && up.status === 201) {
      let subject: string | undefined;
      try {
        subject = (JSON.parse(body.toString('utf8')) as { subject?: { digest?: string } }).subject?.digest;
      } catch {
        subject = undefined;
      }
      const stored = up.headers['docker-content-digest'];
      if (subject && typeof stored === 'string') {
        const repo = put[1] as string;
        const bySubject = known.get(repo) ?? new Map<string, string[]>();
        known.set(repo, bySubject);
        const list = bySubject.get(subject) ?? [];
        if (!list.includes(stored)) list.push(stored);
        bySubject.set(subject, list);
        out.push('OCI-Subject', subject);
      }
    }
    res.writeHead(up.status, out).end(req.method === 'HEAD' ? undefined : up.body);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`referrers emulation: ${String(err)}`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: `${LOOPBACK}:${port}`,
    url: `http://${LOOPBACK}:${port}`,
    referrersRequests: () => referrersRequests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
