// The serve logger redacts credentials wherever a log call puts them.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/logger.js';

describe('createLogger', () => {
  it('writes JSON lines and redacts authorization headers, secrets, passwords and tokens', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (s: string) => lines.push(s) });
    log.info({ req: { method: 'POST', headers: { authorization: 'Bearer hunter2-secret', 'content-type': 'x' } } }, 'request');
    log.info({ headers: { authorization: 'hunter2-secret' } }, 'bare');
    log.warn({ config: { webhookSecret: 'hunter2-secret', password: 'hunter2-secret', token: 'hunter2-secret' } }, 'nested');
    log.error({ secret: 'hunter2-secret', authorization: 'hunter2-secret' }, 'top');
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      const record = JSON.parse(line) as Record<string, unknown>;
      expect(record.service).toBe('tagtrail');
      expect(typeof record.time).toBe('string');
    }
    const all = lines.join('');
    expect(all).not.toContain('hunter2');
    expect(all).toContain('[REDACTED]');
    expect(JSON.parse(lines[0] as string).req.headers['content-type']).toBe('x');
  });

  it('honours the level', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (s: string) => lines.push(s) }, 'warn');
    log.info('hidden');
    log.warn('shown');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['shown']);
  });
});
