// The raw baseline of the sync part: HEAD (or HEAD then GET by digest) of every tag, N in flight,
// with plain fetch, in a process of its own as sync is.
// Arguments: registry base URL, requests in flight, a JSON file of [repository, tag] pairs,
// 'head' or 'head+get', and the Accept header.
import { readFileSync } from 'node:fs';

const [base, width, file, mode, accept] = process.argv.slice(2);
if (base === undefined || width === undefined || file === undefined || mode === undefined || accept === undefined) throw new Error('usage: raw-loop BASE WIDTH REFS_FILE MODE ACCEPT');
const headers = { accept };
const refs = JSON.parse(readFileSync(file, 'utf8')) as [string, string][];
let next = 0;
let errors = 0;
const started = performance.now();

async function worker(): Promise<void> {
  while (next < refs.length) {
    const [repository, tag] = refs[next++] as [string, string];
    const head = await fetch(`${base}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers });
    await head.arrayBuffer();
    if (head.status !== 200) errors++;
    if (mode === 'head+get') {
      const get = await fetch(`${base}/v2/${repository}/manifests/${head.headers.get('docker-content-digest') ?? ''}`, { headers });
      await get.arrayBuffer();
      if (get.status !== 200) errors++;
    }
  }
}

await Promise.all(Array.from({ length: Number(width) }, worker));
const usage = process.resourceUsage();
process.stdout.write(JSON.stringify({ ms: performance.now() - started, n: refs.length, errors, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000 }));
