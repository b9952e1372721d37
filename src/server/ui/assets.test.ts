import { Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ASSETS, COPY_SCRIPT, STYLE, findAsset } from './assets.js';

describe('assets', () => {
  it('has a copy script that parses and sets no inline handlers', () => {
    expect(() => new Script(COPY_SCRIPT)).not.toThrow();
    expect(COPY_SCRIPT).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    expect(COPY_SCRIPT).toContain("getAttribute('data-copy')");
  });

  it('has a style sheet with balanced braces and no remote resources', () => {
    expect(STYLE.split('{').length).toBe(STYLE.split('}').length);
    expect(STYLE).not.toMatch(/url\(|@import/);
  });

  it('names each file by a hash of its content', () => {
    expect(ASSETS.style.path).toMatch(/^\/assets\/tagtrail\.[0-9a-f]{12}\.css$/);
    expect(ASSETS.copy.path).toMatch(/^\/assets\/copy\.[0-9a-f]{12}\.js$/);
    expect(findAsset(ASSETS.copy.path)).toBe(ASSETS.copy);
    expect(findAsset('/assets/copy.js')).toBeUndefined();
  });
});
