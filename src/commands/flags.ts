import type { Runtime } from '../runtime.js';

export async function run(_rt: Runtime, _args: unknown[], _opts: Record<string, unknown>): Promise<number> {
  throw new Error('not yet');
}
