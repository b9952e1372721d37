// A slow link for the fault proxy: a fixed delay on every request (the round trip a far registry
// adds) and one bandwidth shared by all the bytes crossing it in each direction, as on a real
// link, so parallel transfers (skopeo copies layers several at a time) share it too.
import { Transform, type TransformCallback } from 'node:stream';

export interface LinkShape {
  /** Added to every request before it is forwarded: the round trip of the link, in ms. */
  latencyMs: number;
  /** The link's capacity in bits per second, per direction (100 Mbit/s: 100_000_000). */
  bitsPerSecond: number;
}

/** Pieces small enough that concurrent transfers interleave on the link. */
const PIECE = 16 * 1024;

/** One direction of the link: bytes leave it no faster than its capacity, whoever sends them. */
export class LinkDirection {
  private freeAt = 0;

  constructor(private readonly bitsPerSecond: number) {
    if (!(bitsPerSecond > 0)) throw new Error(`link bandwidth must be positive, got ${bitsPerSecond}`);
  }

  /** How long to hold n bytes so that they leave at the link's pace, given what is already queued. */
  reserve(bytes: number): number {
    const now = performance.now();
    this.freeAt = Math.max(now, this.freeAt) + (bytes * 8 * 1000) / this.bitsPerSecond;
    return this.freeAt - now;
  }

  /** A stream that passes its bytes on at the link's pace. */
  throttle(): Transform {
    const reserve = (bytes: number): number => this.reserve(bytes);
    return new Transform({
      transform(chunk: Buffer, _encoding, done: TransformCallback) {
        let offset = 0;
        const next = (): void => {
          if (offset >= chunk.length) {
            done();
            return;
          }
          const piece = chunk.subarray(offset, offset + PIECE);
          offset += piece.length;
          setTimeout(() => {
            this.push(piece);
            next();
          }, reserve(piece.length));
        };
        next();
      },
    });
  }
}
