/**
 * A full, synchronous collection of this thread's heap, where the runtime offers one (Bun does; elsewhere, Deno or
 * Node, a no-op).
 *
 * Why ask: bytes that stream through (S3 parts, deflated blocks, archive windows, restored entries) arrive in
 * buffers of their own that are garbage once used, but Bun's collector does not count them as pressure and lets
 * them pile up. Measured: writing 25, 100 and 200 MB in 5 MiB parts to S3 peaked at 107, 157 and more MB of RSS
 * without it, 82–84 MB with it; a restore of 2.5 GB of 8 MB files at 276 MB of the server's own memory without,
 * 144–161 MB with a collection every 32–64 MiB, and no slower. Callers collect every few tens of MB, where a
 * collection (a few ms on these small heaps) is cheap beside the work.
 */
export function collectGarbage(): void {
  (globalThis as { Bun?: { gc(force: boolean): void } }).Bun?.gc(true);
}

/** Bytes streamed between two collections by default: a collection every 32 MiB costs a few ms. */
const COLLECT_EVERY_BYTES = 32 * 1024 * 1024;

/**
 * A counter of the bytes streamed through (call it with each chunk's length) that collects garbage each time
 * `everyBytes` more have gone by: for code whose buffers are garbage once used. It counts whatever it is given:
 * a writer of many small entries counts them instead (`write-archive.ts`).
 */
export function collectingEvery(everyBytes = COLLECT_EVERY_BYTES): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < everyBytes) return;
    since = 0;
    collectGarbage();
  };
}
