// The query plans of catalog searches, for the benchmarks and the plan checks of the store's
// contract suite. Not part of the Store: the product never asks for a plan.
import { explainSearch as explainWith } from '../../src/catalog/sql/search.js';
import { SqlStore } from '../../src/catalog/sql/store.js';
import type { Store } from '../../src/catalog/store.js';
import type { ExplainOptions, ExplainResult, SearchQuery } from '../../src/catalog/types.js';

/** The plan of the query `store.searchImages(query)` runs, in the store's dialect. */
export async function explainSearch(store: Store, query: SearchQuery, options: ExplainOptions = {}): Promise<ExplainResult> {
  if (!(store instanceof SqlStore)) throw new Error('explainSearch needs a store opened by openStore (an SqlStore)');
  return explainWith(store.driver, query, options);
}
