import { describe, expect, it } from 'vitest';
import { GitlabApi } from '../gitlab/api.js';
import { gitlabSource } from './discovery.js';

describe('gitlabSource covers', () => {
  it('compares GitLab full paths without case: registry names and event paths are lower case', () => {
    const api = new GitlabApi({ url: new URL('http://127.0.0.1:9'), token: 'unused', fetch: () => Promise.reject(new Error('no request expected')) });
    const source = gitlabSource({ api, groups: ['MyGroup'], projects: ['Other/App'], registry: '127.0.0.1:5000' });
    expect(source.covers('mygroup/app')).toBe(true);
    expect(source.covers('mygroup')).toBe(true);
    expect(source.covers('other/app/sub/image')).toBe(true);
    expect(source.covers('mygroupx/app')).toBe(false);
    expect(source.covers('other/appx')).toBe(false);
  });
});
