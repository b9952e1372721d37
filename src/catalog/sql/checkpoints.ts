// Where a crawl got to, by key (sync_checkpoints), so an interrupted one resumes.
import { UsageError } from '../../errors.js';
import { type Queryable, clean } from './driver.js';

export async function getCheckpoint<T>(db: Queryable, key: string): Promise<T | undefined> {
  const rows = await db.all<{ value: string }>('SELECT value FROM sync_checkpoints WHERE key = ?', [key]);
  return rows[0] ? (JSON.parse(rows[0].value) as T) : undefined;
}

export async function setCheckpoint(q: Queryable, key: string, value: unknown): Promise<void> {
  const json = JSON.stringify(value);
  if (json === undefined) throw new UsageError('a checkpoint value must be JSON');
  await q.run('INSERT INTO sync_checkpoints (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at', [
    key,
    clean(json),
    Date.now(),
  ]);
}

export async function deleteCheckpoint(q: Queryable, key: string): Promise<void> {
  await q.run('DELETE FROM sync_checkpoints WHERE key = ?', [key]);
}
