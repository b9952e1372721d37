import { describe, expect, it } from 'vitest';
import { ProjectCrawler, type Timers } from './project-crawls.js';

/** Timers run by hand: fire() runs every pending callback. */
function manualTimers(): Timers & { fire(): void; pending(): number } {
  const pending = new Map<number, () => void>();
  let next = 1;
  return {
    setTimeout: (fn) => {
      const id = next++;
      pending.set(id, fn);
      return id;
    },
    clearTimeout: (h) => void pending.delete(h as number),
    fire: () => {
      const fns = [...pending.values()];
      pending.clear();
      for (const f of fns) f();
    },
    pending: () => pending.size,
  };
}

describe('ProjectCrawler', () => {
  it('turns a burst for one project into one crawl, and one more for events during it', async () => {
    const timers = manualTimers();
    const crawled: string[] = [];
    const running: (() => void)[] = [];
    const finish = (): void => running.shift()?.();
    const crawler = new ProjectCrawler({
      timers,
      crawl: (p) => {
        crawled.push(p);
        return new Promise<void>((resolve) => running.push(resolve));
      },
    });
    for (let i = 0; i < 50; i++) crawler.schedule('acme/app');
    crawler.schedule('acme/other');
    expect(timers.pending()).toBe(2);
    timers.fire();
    expect(crawled.sort()).toEqual(['acme/app', 'acme/other']);
    // Events while the crawls run: one more crawl each, later, however many events.
    for (let i = 0; i < 20; i++) crawler.schedule('acme/app');
    expect(timers.pending()).toBe(0);
    finish();
    finish();
    await new Promise((r) => setImmediate(r));
    expect(timers.pending()).toBe(1);
    timers.fire();
    expect(crawled.filter((p) => p === 'acme/app')).toHaveLength(2);
    finish();
    await crawler.stop();
  });
});
