// Re-crawls of one GitLab project's container repositories, asked for by GitLab's Pipeline and
// Job events (gitlab-events.ts). Debounced per project: the events of a burst (every job of a
// pipeline, then the pipeline) start one crawl, `debounceMs` after the first of them. An event
// that arrives while that project's crawl runs asks for one more crawl after it, so a push made
// during a crawl is still read; however many such events come, there is one more, not one each.
import type { Logger } from 'pino';
import { type RepositorySource, parseLocation } from '../catalog/discovery.js';
import type { Store } from '../catalog/store.js';
import { sync } from '../catalog/sync.js';
import type { GitlabApi } from '../gitlab/api.js';
import { isValidRepository } from '../oci/reference.js';
import type { RegistryClient } from '../oci/registry.js';
import type { Metrics } from './metrics.js';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const DEFAULT_DEBOUNCE_MS = 2000;

export interface ProjectCrawlerOptions {
  /** Crawls the project's repositories (only tags that moved are read: sync's HEAD, then GET for new digests). */
  crawl(projectPath: string): Promise<void>;
  debounceMs?: number;
  timers?: Timers;
  logger?: Logger;
}

interface ProjectState {
  timer?: unknown;
  running?: Promise<void>;
  again: boolean;
}

export class ProjectCrawler {
  private readonly projects = new Map<string, ProjectState>();
  private readonly timers: Timers;
  private readonly debounceMs: number;
  private stopped = false;

  constructor(private readonly options: ProjectCrawlerOptions) {
    this.timers = options.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms).unref(), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
    this.debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  }

  /** Asks for a crawl of the project; returns at once. */
  schedule(projectPath: string): void {
    if (this.stopped) return;
    const state = this.projects.get(projectPath) ?? { again: false };
    this.projects.set(projectPath, state);
    if (state.running) {
      state.again = true;
      return;
    }
    if (state.timer !== undefined) return;
    state.timer = this.timers.setTimeout(() => {
      state.timer = undefined;
      this.run(projectPath, state);
    }, this.debounceMs);
  }

  private run(projectPath: string, state: ProjectState): void {
    state.again = false;
    state.running = this.options
      .crawl(projectPath)
      .catch((err: unknown) => this.options.logger?.warn({ project: projectPath, err: { message: err instanceof Error ? err.message : String(err) } }, 'project crawl failed'))
      .finally(() => {
        state.running = undefined;
        if (state.again && !this.stopped) this.schedule(projectPath);
        else if (state.timer === undefined) this.projects.delete(projectPath);
      });
  }

  /** Crawls waiting for their timer are dropped; running ones are awaited. */
  async stop(): Promise<void> {
    this.stopped = true;
    const running: Promise<void>[] = [];
    for (const state of this.projects.values()) {
      if (state.timer !== undefined) this.timers.clearTimeout(state.timer);
      if (state.running) running.push(state.running);
    }
    await Promise.all(running);
  }
}

export interface ProjectCrawlOptions {
  client: RegistryClient;
  store: Store;
  registry: string;
  concurrency: number;
  readConfigs: boolean;
  /** With discovery on: the project's registry repositories, from GitLab's API. */
  api?: GitlabApi;
  logger?: Logger;
  metrics?: Metrics;
}

/** Repositories the catalog holds at the project's path or under it. */
async function catalogRepositories(store: Store, projectPath: string): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listRepositories({ q: projectPath, limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const r of page.items) if (r.name === projectPath || r.name.startsWith(`${projectPath}/`)) out.push(r.name);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

/** The crawl of one project: its repositories from GitLab's API when discovery is on, else from the catalog. */
export function projectCrawl(o: ProjectCrawlOptions): (projectPath: string) => Promise<void> {
  return async (projectPath) => {
    let names: string[];
    if (o.api) {
      names = [];
      for await (const r of o.api.projectRegistryRepositories(projectPath)) {
        const loc = parseLocation(r.location);
        if (loc && loc.host === o.registry.toLowerCase() && loc.path === r.path) names.push(r.path);
      }
    } else {
      names = await catalogRepositories(o.store, projectPath);
    }
    names = [...new Set(names)].filter(isValidRepository).sort();
    if (names.length === 0) {
      o.logger?.info({ project: projectPath }, 'project crawl: no container repository known for this project');
      return;
    }
    const listed = new Set(names);
    const source: RepositorySource = {
      kind: o.api ? 'gitlab' : 'catalog',
      id: `gitlab-event:${projectPath}`,
      list: async function* (resumeAfter) {
        for (const name of names) if (resumeAfter === undefined || name > resumeAfter) yield { name };
      },
      // Only what was listed is this crawl's: nothing else is retired.
      covers: (repository) => listed.has(repository),
      skipped: () => [],
    };
    const summary = await sync({
      client: o.client,
      store: o.store,
      registry: o.registry,
      prefix: projectPath,
      source,
      resume: false,
      concurrency: o.concurrency,
      readConfigs: o.readConfigs,
      onRead: (what) => o.metrics?.registryReads.inc({ what, source: 'gitlab-event' }),
    });
    o.logger?.info({ project: projectPath, repositories: summary.repositories, added: summary.added, updated: summary.updated, deleted: summary.deleted, manifestsFetched: summary.manifestsFetched, errors: summary.errorCount }, 'project crawl done');
  };
}
