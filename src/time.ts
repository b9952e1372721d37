// Waiting: the one sleep and the one deadline on a promise.

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `p`, or a rejection once `ms` pass without an answer (p itself runs on). */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
