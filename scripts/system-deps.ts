// The Debian packages the test suite and the demo drive for real, installed the same way for both:
// as root with apt-get when one is missing; otherwise the single command to run is printed and
// the caller stops before doing anything else.
//
//   node --import tsx scripts/system-deps.ts            the test suite's packages (npm test runs this)
//   TAGTRAIL_SYSTEM_PACKAGES="a b" ...system-deps.ts    another list (its own tests use a made-up name)
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** What the suite runs: the registry, the image tools, PostgreSQL, the browser, and what gitlab-ci-local needs. */
export const TEST_PACKAGES = ['docker-registry', 'skopeo', 'rsync', 'openssl', 'curl', 'git', 'ca-certificates', 'postgresql-15', 'buildah', 'chromium'] as const;

export interface SystemDepsOptions {
  packages: readonly string[];
  /** For the messages: "the test suite", "the demo". */
  purpose: string;
  /** Which of the packages are installed; undefined when this is no Debian system (no dpkg-query). */
  installed?: (packages: readonly string[]) => Set<string> | undefined;
  isRoot?: () => boolean;
  /** Runs apt-get; returns its exit status. */
  install?: (packages: readonly string[]) => number;
  out?: (line: string) => void;
  err?: (line: string) => void;
}

export type SystemDepsResult = { ok: true; installed: string[] } | { ok: false; missing: string[]; command: string };

/** Installed packages among these, from one dpkg-query call (it exits non-zero for unknown names but still lists the known ones). */
export function dpkgInstalled(packages: readonly string[]): Set<string> | undefined {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Abbrev}\n', ...packages], { encoding: 'utf8' });
  if (r.error) return undefined;
  const found = new Set<string>();
  for (const line of r.stdout.split('\n')) {
    const [name, status] = line.trim().split(/\s+/);
    // "ii": wanted installed, is installed.
    if (name && status === 'ii') found.add(name);
  }
  return found;
}

export function installCommand(packages: readonly string[]): string {
  return `apt-get update && apt-get install -y --no-install-recommends ${packages.join(' ')}`;
}

function aptInstall(packages: readonly string[]): number {
  const r = spawnSync('sh', ['-c', installCommand(packages)], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status ?? 1;
}

export function ensureSystemPackages(options: SystemDepsOptions): SystemDepsResult {
  const installed = (options.installed ?? dpkgInstalled)(options.packages);
  const out = options.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = options.err ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (installed === undefined) {
    // Not Debian: nothing to check with; the tests that need a tool name it when it is missing.
    err(`${options.purpose} drives these Debian packages: ${options.packages.join(' ')}; dpkg-query is not available to check them, so make sure their programs are installed.`);
    return { ok: true, installed: [] };
  }
  const missing = options.packages.filter((p) => !installed.has(p));
  if (missing.length === 0) return { ok: true, installed: [] };
  const command = installCommand(missing);
  const isRoot = options.isRoot ?? (() => process.getuid?.() === 0);
  if (!isRoot()) {
    err(`${options.purpose} needs Debian packages that are not installed: ${missing.join(' ')}. Install them with:\n\n  sudo sh -c '${command}'\n\nthen run it again.`);
    return { ok: false, missing, command };
  }
  out(`${options.purpose}: installing the missing Debian packages: ${command}`);
  const status = (options.install ?? aptInstall)(missing);
  const still = (options.installed ?? dpkgInstalled)(missing);
  const left = missing.filter((p) => !still?.has(p));
  if (status !== 0 || left.length > 0) {
    err(`${options.purpose}: installing ${left.join(' ') || missing.join(' ')} failed (apt-get exit ${status}); run it by hand:\n\n  ${command}`);
    return { ok: false, missing: left.length > 0 ? left : missing, command };
  }
  return { ok: true, installed: missing };
}

function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const listed = process.env.TAGTRAIL_SYSTEM_PACKAGES?.trim();
  const packages = listed ? listed.split(/\s+/) : [...TEST_PACKAGES];
  const result = ensureSystemPackages({ packages, purpose: 'the test suite' });
  process.exitCode = result.ok ? 0 : 1;
}
