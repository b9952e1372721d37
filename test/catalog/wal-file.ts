// A SQLite WAL file read as it lies on disk (https://www.sqlite.org/fileformat2.html#walformat):
// a 32-byte header (page size at 8, salts at 16), then frames of a 24-byte header (the database
// size after a commit at 4, 0 otherwise; the salts at 8) and a page. Frames since the WAL's last
// restart carry the header's salts; older ones left past them do not.
import { readFileSync } from 'node:fs';

/** The WAL's frames since its last restart, and the transactions they commit (a commit frame ends each). */
export function walSinceRestart(dbPath: string): { frames: number; commits: number } {
  const wal = readFileSync(`${dbPath}-wal`);
  if (wal.length < 32) return { frames: 0, commits: 0 };
  const pageSize = wal.readUInt32BE(8);
  const salt = wal.subarray(16, 24);
  let frames = 0;
  let commits = 0;
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    if (!wal.subarray(at + 8, at + 16).equals(salt)) break;
    frames++;
    if (wal.readUInt32BE(at + 4) !== 0) commits++;
  }
  return { frames, commits };
}
