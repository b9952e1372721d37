// The deployment examples, run against the real parts here. There is no container engine or
// cluster on this machine, so the images are stood in for: a real PostgreSQL 15 for `postgres`,
// a real registry (distribution) for `registry`, and the locally built CLI for the tagtrail image.
// What is taken from the files as written: each tagtrail container's command and environment (the
// image's ENV from the Dockerfile, then the service's or container's own), compose's variable
// interpolation, Kubernetes secretKeyRef values (from secret.example.yaml), the volume mount
// path, and the probe paths. What is mapped: service host names to the loopback ports of the
// stand-ins, and the listen address 0.0.0.0:8080 to 127.0.0.1 on a free port (test servers listen
// on loopback only). So that serve on 0.0.0.0 would start too, each example's access settings
// are checked as written: serve refuses a non-loopback address without an explicit --auth.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { UsageError } from '../src/errors.js';
import { accessSettings } from '../src/server/auth/settings.js';
import { seedRegistry, type Seeded } from './catalog/seed.js';
import { runBin } from './helpers/cli.js';
import { readDockerfile, stageEnv } from './helpers/dockerfile.js';
import { useRegistry, useTempDir } from './helpers/fixtures.js';
import { freePort } from './helpers/ports.js';
import { startPostgres, type PostgresCluster } from './helpers/postgres.js';
import { rawRequest } from './server/access/http.js';
import { ensureBuilt, startServe, until, type ServeProcess } from './server/serve-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SEEDED_TAGS = 4;

type Env = Record<string, string>;

/** compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$. */
function interpolate(text: string, vars: Env): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}/g, (whole, name: string | undefined, op: string | undefined, arg: string | undefined) => {
    if (whole === '$$') return '$';
    const v = vars[name as string];
    if (v !== undefined && v !== '') return v;
    if (op === '-') return arg ?? '';
    if (op === '?') throw new Error(`compose would stop: ${arg}`);
    return '';
  });
}

/** The image's ENV, then the container's: what the process sees in the container. */
async function imageEnv(): Promise<Env> {
  const stages = await readDockerfile(ROOT);
  return stageEnv(stages[stages.length - 1] as (typeof stages)[number]);
}

/** Replaces host:port of the stand-ins and moves the listen address to loopback. */
function mapAddresses(env: Env, hosts: Record<string, string>, listen: string): Env {
  const out: Env = {};
  for (const [k, v] of Object.entries(env)) {
    let value = v;
    for (const [from, to] of Object.entries(hosts)) value = value.split(from).join(to);
    out[k] = k === 'TAGTRAIL_LISTEN' ? listen : value;
  }
  return out;
}

/** Runs a container command of the form ["tagtrail", "serve", ...] with the built CLI. */
async function runServe(command: unknown, env: Env): Promise<ServeProcess> {
  expect(Array.isArray(command) && command[0] === 'tagtrail' && command[1] === 'serve', `the command is tagtrail serve: ${JSON.stringify(command)}`).toBe(true);
  return startServe((command as string[]).slice(2), env);
}

/** The status of GET `path`, with the Host a probe or a person sends (default: the URL's own). */
async function probe(url: string, path: string, host?: string): Promise<number> {
  return (await rawRequest(`${url}${path}`, host !== undefined ? { host } : {})).status;
}

/**
 * The example's access settings as written (before the listen address is mapped): it listens on
 * an address others can reach, says who may read the catalog, and would be refused without that.
 */
function expectExplicitAccess(env: Env, mode: 'gitlab' | 'none'): void {
  const listenHostname = (env.TAGTRAIL_LISTEN ?? '').replace(/:\d+$/, '');
  expect(listenHostname).toBe('0.0.0.0');
  expect(env.TAGTRAIL_AUTH).toBe(mode);
  const written = { listenHostname, ...(env.TAGTRAIL_AUTH !== undefined ? { auth: env.TAGTRAIL_AUTH } : {}), ...(env.TAGTRAIL_PUBLIC_URL !== undefined ? { publicUrl: env.TAGTRAIL_PUBLIC_URL } : {}) };
  expect(accessSettings(written).mode).toBe(mode);
  const { auth: _chosen, ...unchosen } = written;
  expect(() => accessSettings(unchosen)).toThrow(UsageError);
}

async function pgCount(url: string, sql: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>(sql)).rows[0]?.n);
  } finally {
    await client.end();
  }
}

describe('deployment examples', () => {
  const registry = useRegistry();
  const dir = useTempDir('deploy');
  let cluster: PostgresCluster | undefined;
  let seeded: Seeded;
  /** postgres://…@127.0.0.1:PORT/ of the stand-in, for the role the examples name. */
  let pgHostPort: string;
  const serves: ServeProcess[] = [];

  async function admin(statements: string[]): Promise<void> {
    const client = new pg.Client({ connectionString: (cluster as PostgresCluster).url });
    await client.connect();
    try {
      for (const sql of statements) await client.query(sql);
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    ensureBuilt();
    cluster = await startPostgres();
    pgHostPort = new URL(cluster.url).host;
    // The role and database the examples name: the owner of its database, not a superuser.
    await admin(["CREATE ROLE tagtrail LOGIN PASSWORD 'not-checked-trust-auth' NOSUPERUSER NOCREATEDB NOCREATEROLE", 'CREATE DATABASE tagtrail OWNER tagtrail']);
    seeded = await seedRegistry(registry().host, 'deploy');
  }, 120_000);

  afterAll(async () => {
    for (const s of serves) await s.stop();
    await cluster?.stop();
  });

  it('compose: tagtrail serve on PostgreSQL gets ready, its reconcile fills the catalog, and a sync with the same settings agrees', async () => {
    const text = await readFile(join(ROOT, 'deploy', 'compose.yaml'), 'utf8');
    const vars = { POSTGRES_PASSWORD: 'compose-password', TAGTRAIL_WEBHOOK_SECRET: 'w'.repeat(40) };
    expect(() => parse(interpolate(text, {}))).toThrow(/set POSTGRES_PASSWORD/);
    const compose = parse(interpolate(text, vars)) as { services: Record<string, { command?: unknown; environment?: Env; ports?: string[]; depends_on?: Record<string, unknown> }> };
    const service = compose.services.tagtrail;
    expect(service, 'the tagtrail service').toBeDefined();
    // Open on purpose (TAGTRAIL_AUTH=none), so published on loopback only.
    for (const p of Object.values(compose.services).flatMap((s) => s.ports ?? [])) expect(p).toMatch(/^127\.0\.0\.1:/);
    expect(Object.keys(service?.depends_on ?? {})).toContain('postgres');
    expect(compose.services.postgres?.environment).toMatchObject({ POSTGRES_USER: 'tagtrail', POSTGRES_DB: 'tagtrail' });

    const listen = `127.0.0.1:${await freePort()}`;
    const written = { ...(await imageEnv()), ...(service?.environment ?? {}) };
    expectExplicitAccess(written, 'none');
    const env = mapAddresses(written, { 'postgres:5432': pgHostPort, 'registry:5000': registry().host }, listen);
    expect(env.TAGTRAIL_DB).toBe(`postgres://tagtrail:compose-password@${pgHostPort}/tagtrail`);
    const serve = await runServe(service?.command, env);
    serves.push(serve);
    expect(await probe(serve.url, '/readyz')).toBe(200);
    expect(await probe(serve.url, '/healthz')).toBe(200);
    // The published port, as a browser on the host reaches it: open, no sign-in.
    expect(await probe(serve.url, '/api/v1/repositories', `localhost:${new URL(serve.url).port}`)).toBe(200);

    const db = env.TAGTRAIL_DB as string;
    await until(async () => ((await pgCount(db, "SELECT count(*) AS n FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE t.deleted_at IS NULL AND r.name LIKE 'deploy/%'")) === SEEDED_TAGS ? true : undefined), 60_000, 200);
    expect(await pgCount(db, `SELECT count(*) AS n FROM annotations a JOIN manifests m ON m.id = a.manifest_id WHERE m.digest = '${seeded.app.digest}' AND a.key = 'com.gitlab.ci.commit_sha' AND a.value = '${seeded.app.commit}'`)).toBe(1);
    // Migrations ran as the database's owner, which owns what they made.
    expect(await pgCount(db, "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'tagtrail'")).toBe(0);

    await serve.stop();
    // The first fill by hand, as docs/deploy.md shows it: `tagtrail sync` with the service's settings.
    const sync = await runBin(['sync', '-o', 'json'], { env });
    expect(sync.stderr).toBe('');
    expect(sync.code).toBe(0);
    expect(JSON.parse(sync.stdout)).toMatchObject({ complete: true, unchanged: SEEDED_TAGS, added: 0 });
  }, 120_000);

  it('Kubernetes on PostgreSQL: the Deployment\'s command and env (secretKeyRef from the example Secret) serve, ready on the readiness path, alive on the liveness path', async () => {
    const secret = parse(await readFile(join(ROOT, 'deploy', 'kubernetes', 'secret.example.yaml'), 'utf8')) as { metadata: { name: string }; stringData: Env };
    const deployment = parse(await readFile(join(ROOT, 'deploy', 'kubernetes', 'deployment.yaml'), 'utf8')) as K8sDeployment;
    const service = parse(await readFile(join(ROOT, 'deploy', 'kubernetes', 'service.yaml'), 'utf8')) as { spec: { selector: Env; ports: { targetPort: string }[] } };
    const container = deployment.spec.template.spec.containers[0] as K8sContainer;
    expect(service.spec.selector).toEqual(deployment.spec.template.metadata.labels);
    expect(container.ports?.map((p) => p.name)).toContain(service.spec.ports[0]?.targetPort);
    expect(container.readinessProbe?.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe?.httpGet.path).toBe('/healthz');
    expect(deployment.spec.template.spec.volumes, 'no volume on PostgreSQL').toBeUndefined();

    // An empty database again, so what the Deployment's serve writes is all there is.
    await admin(['DROP DATABASE tagtrail', 'CREATE DATABASE tagtrail OWNER tagtrail']);
    const listen = `127.0.0.1:${await freePort()}`;
    // The example Secret's placeholders stand for the stand-ins; the https registry of the example
    // is reached over plain http here (the TLS path has its own test, test/net/network.test.ts).
    const written = { ...(await imageEnv()), ...containerEnv(container, secret) };
    expectExplicitAccess(written, 'gitlab');
    const env = mapAddresses(written, { 'postgres.db.svc:5432': pgHostPort, 'https://registry.example.com': `http://${registry().host}` }, listen);
    const serve = await runServe(container.command, env);
    serves.push(serve);
    await expectProbesAnswer(serve, container, env);
    await until(async () => ((await pgCount(env.TAGTRAIL_DB as string, "SELECT count(*) AS n FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE t.deleted_at IS NULL AND r.name LIKE 'deploy/%'")) === SEEDED_TAGS ? true : undefined), 60_000, 200);
    await serve.stop();
  }, 120_000);

  it('Kubernetes on SQLite: one replica, the claim mounted at the image\'s volume, the catalog written there', async () => {
    const deployment = parse(await readFile(join(ROOT, 'deploy', 'kubernetes', 'sqlite', 'deployment.yaml'), 'utf8')) as K8sDeployment;
    const pvc = parseAllDocuments(await readFile(join(ROOT, 'deploy', 'kubernetes', 'sqlite', 'pvc.yaml'), 'utf8')).map((d) => d.toJS() as { metadata: { name: string } });
    const secret = parse(await readFile(join(ROOT, 'deploy', 'kubernetes', 'secret.example.yaml'), 'utf8')) as { metadata: { name: string }; stringData: Env };
    const spec = deployment.spec.template.spec;
    const container = spec.containers[0] as K8sContainer;
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy?.type).toBe('Recreate');
    const mount = container.volumeMounts?.[0];
    const volume = spec.volumes?.find((v) => v.name === mount?.name);
    expect(pvc.map((p) => p.metadata.name)).toContain(volume?.persistentVolumeClaim?.claimName);
    const stages = await readDockerfile(ROOT);
    expect(stages[stages.length - 1]?.instructions.find((i) => i.op === 'VOLUME')?.args).toBe(mount?.mountPath);

    const data = join(dir(), 'volume');
    const listen = `127.0.0.1:${await freePort()}`;
    const written = { ...(await imageEnv()), ...containerEnv(container, secret) };
    expectExplicitAccess(written, 'gitlab');
    const env = mapAddresses(written, { [mount?.mountPath as string]: data, 'https://registry.example.com': `http://${registry().host}` }, listen);
    expect(env.TAGTRAIL_DB).toBe(`sqlite:${data}/tagtrail.db`);
    await mkdir(data);
    const serve = await runServe(container.command, env);
    serves.push(serve);
    await expectProbesAnswer(serve, container, env);
    const count = (): number => {
      const db = new Database(join(data, 'tagtrail.db'), { readonly: true, fileMustExist: true });
      try {
        return (db.prepare("SELECT count(*) AS n FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE t.deleted_at IS NULL AND r.name LIKE 'deploy/%'").get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    await until(async () => (count() === SEEDED_TAGS ? true : undefined), 60_000, 200);
    await serve.stop();
  }, 120_000);
});

/**
 * The probes as the kubelet sends them (with their Host header) answer 200; the catalog itself
 * asks for sign-in, at the public host.
 */
async function expectProbesAnswer(serve: ServeProcess, container: K8sContainer, env: Env): Promise<void> {
  for (const p of [container.readinessProbe, container.livenessProbe]) {
    const host = p?.httpGet.httpHeaders?.find((h) => h.name.toLowerCase() === 'host')?.value;
    expect(host, `${p?.httpGet.path} sends the public host`).toBe(new URL(env.TAGTRAIL_PUBLIC_URL as string).host);
    expect(await probe(serve.url, p?.httpGet.path as string, host)).toBe(200);
  }
  const api = await rawRequest(`${serve.url}/api/v1/repositories`, { host: new URL(env.TAGTRAIL_PUBLIC_URL as string).host });
  expect(api.status).toBe(401);
  expect(JSON.parse(api.body)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
}

interface K8sProbe {
  httpGet: { path: string; port: string; httpHeaders?: { name: string; value: string }[] };
}

interface K8sContainer {
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: K8sProbe;
  livenessProbe?: K8sProbe;
  volumeMounts?: { name: string; mountPath: string }[];
}

interface K8sDeployment {
  spec: {
    replicas: number;
    strategy?: { type: string };
    template: {
      metadata: { labels: Env };
      spec: { containers: K8sContainer[]; volumes?: { name: string; persistentVolumeClaim?: { claimName: string } }[] };
    };
  };
}

/** A container's env as the kubelet resolves it: values, and secretKeyRef from the given Secret. */
function containerEnv(container: K8sContainer, secret: { metadata: { name: string }; stringData: Env }): Env {
  const env: Env = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    const ref = e.valueFrom?.secretKeyRef;
    if (ref) {
      expect(ref.name).toBe(secret.metadata.name);
      const v = secret.stringData[ref.key];
      expect(v, `the Secret has ${ref.key}`).toBeDefined();
      env[e.name] = v as string;
    }
  }
  return env;
}
