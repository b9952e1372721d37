// Loaded with --import into the `tagtrail sync` child of the sync and memory parts: samples the V8
// heap and the memory of buffers every 50 ms, and reports them with the process's peak RSS and its
// CPU time as it exits. Built to plain JavaScript first (see programs.ts), so no TypeScript loader runs in the
// measured process.
import { PerformanceObserver, constants } from 'node:perf_hooks';

let heap = 0;
let live = 0;
let external = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } | null }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) live = Math.max(live, process.memoryUsage().heapUsed);
  }
}).observe({ entryTypes: ['gc'] });
const timer = setInterval(() => {
  const m = process.memoryUsage();
  heap = Math.max(heap, m.heapUsed);
  external = Math.max(external, m.external);
}, 50);
timer.unref();
process.on('exit', () => {
  const usage = process.resourceUsage();
  // CPU time of every thread (the SQLite connection threads too), ms.
  const cpuMs = (usage.userCPUTime + usage.systemCPUTime) / 1000;
  process.stderr.write(`\nBENCH_MEMORY=${JSON.stringify({ maxRssKb: usage.maxRSS, heapUsed: heap, live, external, cpuMs })}\n`);
});
