// Many small catalog calls made at once, gathered into few: the one place that decides how. A
// crawl's look-ups and manifest writes (crawl-store.ts) and the webhook's tag pushes
// (push-batch.ts) go through it. Each caller still gets its own answer, or its own error.

interface BatcherOptions {
  /** Calls in one batch at most. */
  max: number;
  /** Batches running at once (default 1). A call made while that many run waits for one to end. */
  inFlight?: number;
  /**
   * How long the first call made to an idle batcher waits for others (default 0: only the calls
   * of the same moment, gathered on the next microtask). A batcher that is busy never waits: the
   * calls made meanwhile go as soon as a batch ends.
   */
  gatherMs?: number;
  /** Told each batch's size as it starts; should it throw, the batch's calls fail with its error, unrun. */
  onBatch?: (size: number) => void;
}

interface Pending<K, V> {
  key: K;
  resolve: (value: V) => void;
  reject: (err: unknown) => void;
}

/**
 * `run` answers a batch, in its order. When it fails for a batch of several, which one failed is
 * not known: each is run again alone (`runOne`), one after the other, so only that one fails.
 */
export function batcher<K, V>(options: BatcherOptions, run: (keys: K[]) => Promise<V[]>, runOne: (key: K) => Promise<V>): (key: K) => Promise<V> {
  const { max } = options;
  const inFlight = options.inFlight ?? 1;
  const gatherMs = options.gatherMs ?? 0;
  const queue: Pending<K, V>[] = [];
  let running = 0;
  let scheduled = false;

  const runBatch = async (batch: Pending<K, V>[]): Promise<void> => {
    options.onBatch?.(batch.length);
    let values: V[];
    try {
      values = await run(batch.map((p) => p.key));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      for (const p of batch) {
        // A store call that throws before it returns a promise fails its own caller too.
        try {
          p.resolve(await runOne(p.key));
        } catch (oneErr) {
          p.reject(oneErr);
        }
      }
      return;
    }
    batch.forEach((p, i) => p.resolve(values[i] as V));
  };
  const start = (): void => {
    scheduled = false;
    while (running < inFlight && queue.length > 0) {
      running++;
      const batch = queue.splice(0, max);
      // What breaks outside run and runOne (an onBatch that throws) fails the batch's calls that
      // are still waiting, instead of leaving them waiting for ever; answered ones keep their answer.
      void runBatch(batch)
        .catch((err: unknown) => batch.forEach((p) => p.reject(err)))
        .finally(() => {
          running--;
          start();
        });
    }
  };
  return (key) =>
    new Promise<V>((resolve, reject) => {
      queue.push({ key, resolve, reject });
      // While every slot runs, the end of a batch starts the next.
      if (scheduled || running >= inFlight) return;
      scheduled = true;
      if (gatherMs > 0 && running === 0) setTimeout(start, gatherMs);
      else queueMicrotask(start);
    });
}
