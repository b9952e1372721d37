// A concurrency limit: at most n functions run at once, the rest wait in arrival order.
// Apply it to leaf operations only (one registry request each): a limited function that waits
// for another limited function of the same limiter can deadlock.
export type Limiter = <T>(fn: () => Promise<T>) => Promise<T>;

export function createLimiter(n: number): Limiter {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`concurrency must be a positive integer, got ${n}`);
  let active = 0;
  const queue: (() => void)[] = [];
  // A finishing function hands its slot straight to the first waiter, so none is taken twice.
  const next = (): void => {
    const waiter = queue.shift();
    if (waiter) waiter();
    else active--;
  };
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => queue.push(resolve));
    else active++;
    try {
      return await fn();
    } finally {
      next();
    }
  };
}

/** No limit. */
export const unlimited: Limiter = (fn) => fn();
