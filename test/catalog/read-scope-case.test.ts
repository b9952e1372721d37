// GitLab keeps the case of a full path (Acme/App) while registry names are lower case: the read
// rule compares them without case, on both stores, for member projects and discovery records.
import { beforeAll, describe, expect, it } from 'vitest';
import type { ReadScope } from '../../src/catalog/read-scope.js';
import type { Store } from '../../src/catalog/store.js';
import { imageRecord } from '../helpers/records.js';
import { BACKENDS, useBackend } from './backends.js';

const AT = new Date('2026-03-04T10:00:00Z');

describe.each(BACKENDS)('read scopes and the case of GitLab paths on %s', (backendName) => {
  const backend = useBackend(backendName);
  let store: Store;

  beforeAll(async () => {
    store = (await backend().fresh()).store;
    for (const name of ['acme/app', 'acme/app/sub/image', 'found/svc', 'other/thing']) {
      const record = imageRecord({ annotations: { 'com.example.name': name } });
      await store.putManifest(record);
      await store.setTag(name, 'v1', record.digest, AT);
    }
    // Discovery recorded the project with GitLab's own spelling.
    await store.setGitlabProject('found/svc', { id: 7, path: 'Found/Svc', visibility: 'private' });
  });

  const names = async (scope: ReadScope): Promise<string[]> => (await store.listRepositories({ limit: 100, scope })).items.map((r) => r.name);

  it('a member of Acme/App reads acme/app and what lies under it', async () => {
    expect(await names({ projects: ['Acme/App'], publicAndInternal: false })).toEqual(['acme/app', 'acme/app/sub/image']);
  });

  it('a member of Found/Svc reads the repository discovery recorded as Found/Svc', async () => {
    expect(await names({ projects: ['Found/Svc'], publicAndInternal: false })).toEqual(['found/svc']);
    expect(await names({ projects: ['found/svc'], publicAndInternal: false })).toEqual(['found/svc']);
  });
});
