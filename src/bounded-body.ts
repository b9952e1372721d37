// Reads an HTTP body into memory, but never more than a cap: the registry client and the
// webhook both take bodies from peers they do not control.

/**
 * The whole body, or `tooLarge(declared)` thrown as soon as the declared length or the bytes
 * received pass `max` (the stream is cancelled first).
 */
export async function readBounded(
  body: ReadableStream<Uint8Array> | null,
  declaredLength: string | null,
  max: number,
  tooLarge: (declared?: number) => Error,
): Promise<Uint8Array> {
  const declared = declaredLength === null ? NaN : Number(declaredLength);
  if (Number.isFinite(declared) && declared > max) {
    await body?.cancel().catch(() => undefined);
    throw tooLarge(declared);
  }
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}
