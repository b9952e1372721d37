import { describe, expect, it } from 'vitest';
import { databaseUrlSecrets, redactDatabaseUrl } from './database-url.js';

describe('redactDatabaseUrl', () => {
  it('hides the whole password, up to the last @ of the authority (pg reads u:p@ss@host so)', () => {
    const url = 'postgres://u:p@ss@db.example:5432/x';
    expect(redactDatabaseUrl(url)).toBe('postgres://u:***@db.example:5432/x');
    expect(redactDatabaseUrl(url)).not.toContain('ss@');
  });

  it('keeps a URL without a password, and a path with @ in it, as it is', () => {
    expect(redactDatabaseUrl('postgres://u@db/x')).toBe('postgres://u@db/x');
    expect(redactDatabaseUrl('postgres://db/x@y')).toBe('postgres://db/x@y');
    expect(redactDatabaseUrl('postgresql://u:secret@db/x?sslmode=require&password=two')).toBe('postgresql://u:***@db/x?sslmode=require&password=***');
  });

  it('names the secrets it hides', () => {
    expect(databaseUrlSecrets('postgres://u:p%40ss@db/x')).toContain('p@ss');
  });
});
