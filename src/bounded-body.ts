// Reads an HTTP body into memory, but never more than a cap: the registry client and the
// webhook both take bodies from peers they do not control.

type Body = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

function isWebStream(body: Body): body is ReadableStream<Uint8Array> {
  return typeof (body as ReadableStream<Uint8Array>).getReader === 'function';
}

/** A web stream's chunks; leaving the loop early cancels the stream. */
async function* webChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
  }
}

function isDestroyable(body: Body): body is AsyncIterable<Uint8Array> & { destroy(): void } {
  return typeof (body as { destroy?: unknown }).destroy === 'function';
}

/** Stops a body that will not be read: cancels a web stream, destroys a node stream. */
async function drop(body: Body): Promise<void> {
  if (isWebStream(body)) await body.cancel().catch(() => undefined);
  // An iterator never started runs no cleanup on return(), so a node stream is destroyed itself:
  // left open, its socket would stay busy and keep the process alive.
  else if (isDestroyable(body)) body.destroy();
  else await body[Symbol.asyncIterator]().return?.()?.catch(() => undefined);
}

/**
 * The whole body, or `tooLarge(declared)` thrown as soon as the declared length or the bytes
 * received pass `max` (the body is cancelled first). The body is a web stream (fetch) or any
 * async iterable of bytes (a node stream).
 */
export async function readBounded(body: Body | null, declaredLength: string | null, max: number, tooLarge: (declared?: number) => Error): Promise<Uint8Array> {
  const declared = declaredLength === null ? NaN : Number(declaredLength);
  if (Number.isFinite(declared) && declared > max) {
    if (body) await drop(body);
    throw tooLarge(declared);
  }
  if (!body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  // Leaving the loop by the throw below closes the iterator, which cancels the body.
  for await (const value of isWebStream(body) ? webChunks(body) : body) {
    total += value.byteLength;
    if (total > max) throw tooLarge();
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}
