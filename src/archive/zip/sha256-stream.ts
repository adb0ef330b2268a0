/**
 * A checksum stream: the SHA-256 of bytes on their way through a web stream, for an uploaded archive whose
 * digest is kept beside it.
 */
import { createHash } from "node:crypto";

/** A pass-through stage that hashes every chunk on its way; `digest()` is ready once the stream is flushed. */
export class Sha256Stream extends TransformStream<Uint8Array, Uint8Array> {
  #hash = createHash("sha256");
  #digest: string | undefined;
  #bytes = 0;

  constructor() {
    super({
      transform: (chunk, controller) => {
        this.#hash.update(chunk);
        this.#bytes += chunk.length;
        controller.enqueue(chunk);
      },
      flush: () => {
        this.#digest = this.#hash.digest("hex");
      },
    });
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The hex SHA-256 of everything that passed; throws if the stream has not finished. */
  digest(): string {
    if (this.#digest === undefined) throw new Error("The SHA-256 stream has not finished.");
    return this.#digest;
  }
}
