// Signed-in sessions in the catalog (migration 8), on both stores: what goes in comes back while
// it lasts, an expired one is not found, and ending one drops it and every expired one.
import { describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../src/catalog/sql/sessions.js';
import { BACKENDS, countRows, useBackend } from './backends.js';

function session(id: string, createdAt: Date, hours: number): SessionRecord {
  return { id, subject: '42', username: 'alice', token: 'sealed-token', csrf: `csrf-${id}`, createdAt, expiresAt: new Date(createdAt.getTime() + hours * 3600_000) };
}

describe.each(BACKENDS)('sessions on %s', (backendName) => {
  const backend = useBackend(backendName);

  it('finds a session until it expires, and ends it', async () => {
    const catalog = await backend().fresh();
    const { store } = catalog;
    const t0 = new Date('2026-05-01T08:00:00Z');
    await store.putSession(session('a'.repeat(64), t0, 12));
    await store.putSession(session('b'.repeat(64), t0, 1));
    expect(await store.findSession('a'.repeat(64), new Date(t0.getTime() + 11 * 3600_000))).toEqual(session('a'.repeat(64), t0, 12));
    expect(await store.findSession('a'.repeat(64), new Date(t0.getTime() + 12 * 3600_000))).toBeUndefined();
    expect(await store.findSession('c'.repeat(64), t0)).toBeUndefined();
    await store.setSessionToken('a'.repeat(64), 'refreshed-token');
    expect((await store.findSession('a'.repeat(64), t0))?.token).toBe('refreshed-token');
    expect((await store.findSession('a'.repeat(64), t0))?.expiresAt).toEqual(new Date(t0.getTime() + 12 * 3600_000));
    // Ending one, two hours in, also drops the other, expired after one hour.
    await store.deleteSession('a'.repeat(64), new Date(t0.getTime() + 2 * 3600_000));
    expect(await countRows(catalog, 'sessions')).toBe(0);
  });
});
