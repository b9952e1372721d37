// The Dockerfile read as instructions by stage, for tests that check it without a container
// engine (test/dockerfile.test.ts) and run what it sets up (test/deploy.test.ts).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Instruction {
  op: string;
  args: string;
}

export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions by stage: comments dropped, backslash continuations joined. */
export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (current === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(l);
    if (!m) throw new Error(`cannot read Dockerfile line: ${l}`);
    const op = (m[1] as string).toUpperCase();
    const args = (m[2] as string).trim();
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`cannot read FROM ${args}`);
      stages.push({ from: f[1] as string, ...(f[2] ? { name: f[2] } : {}), instructions: [] });
    } else {
      const stage = stages[stages.length - 1];
      if (!stage) throw new Error(`${op} before the first FROM`);
      stage.instructions.push({ op, args });
    }
  }
  return stages;
}

/** Sources of a COPY without --from: every word but the last, options dropped. */
export function copySources(args: string): { from?: string; sources: string[] } {
  const words = args.split(/\s+/);
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
  const rest = words.filter((w) => !w.startsWith('--'));
  return { ...(from ? { from } : {}), sources: rest.slice(0, -1) };
}

/** ENV of a stage as a record: `ENV A=1 B=2` and `ENV A 1`. */
export function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of stage.instructions.filter((x) => x.op === 'ENV')) {
    if (!i.args.includes('=')) {
      const [k, ...v] = i.args.split(/\s+/);
      env[k as string] = v.join(' ');
      continue;
    }
    for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) env[m[1] as string] = m[3] ?? (m[2] as string);
  }
  return env;
}


/** The project's Dockerfile, by stage. */
export async function readDockerfile(root: string): Promise<Stage[]> {
  return parseDockerfile(await readFile(join(root, 'Dockerfile'), 'utf8'));
}
