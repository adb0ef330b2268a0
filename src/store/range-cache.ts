/** Reads of at most this many bytes get their own buffer (`read`). */
const COPY_AT_MOST = 64 * 1024;

/**
 * Random reads of a remote object (an archive in S3) through a few cached windows of it.
 *
 * Why several: a restore reads three entries at once (data.db and two storage files), each front to back,
 * plus zip.js's small header reads. With one cached window the lanes evicted each other's, so most reads
 * fetched a fresh window: a 42 MB archive cost 113–119 MB of GETs. With a window per reader, and reads of a
 * window being fetched sharing that fetch, each byte is fetched about once.
 *
 * Why read ahead: a reader that has used half of its window usually wants the next one; fetching it while the
 * first half is processed keeps a lane from waiting a round trip per window on a real network.
 *
 * Ranges marked with `skip` (entries a restore copies from the live data instead) are left out of windows and
 * read-ahead, so their bytes are not downloaded beside their neighbours'.
 */
export class RangeCache {
  /** Most recently used last. A window's bytes may still be arriving. */
  #windows: Window[] = [];
  /** Ranges fetched so far, merged and in order: a range fetched once is not read ahead again. */
  #fetched: [number, number][] = [];
  /** Ranges no reader is expected to need, merged and in order (a restore may skip thousands of uploads). */
  #skipped: [number, number][] = [];

  constructor(
    readonly size: number,
    /** Fetches exactly `length` bytes at `offset` (retrying on its own), or throws. */
    private readonly fetchRange: (offset: number, length: number) => Promise<Uint8Array>,
    private readonly options: { windowSize: number; maxWindows: number },
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(this.size, offset + length);
    if (offset >= end) return new Uint8Array();
    // The read's pieces, window by window; a gap between cached windows is fetched as a window of its own (so a
    // read across a window's end does not fetch that window again).
    const pieces: { window: Window; from: number; to: number }[] = [];
    for (let at = offset; at < end;) {
      let window = this.#windows.find((w) => w.start <= at && at < w.end);
      if (window) this.#touch(window);
      // In a skipped range only what is asked for (a data descriptor read just past its entry's end reaches 8
      // bytes into the next entry, which is skipped).
      else window = this.#fetch(at, this.#skippedRangeAt(at) ? end - at : Math.max(end - at, this.options.windowSize));
      const to = Math.min(end, window.end);
      window.readTo = Math.max(window.readTo, to);
      pieces.push({ window, from: at, to });
      at = window.end;
    }
    const last = pieces.at(-1)!.window;
    if (end > last.start + (last.end - last.start) / 2) this.#readAhead(last.end);
    const parts = await Promise.all(pieces.map(async ({ window, from, to }) => (await window.bytes).subarray(from - window.start, to - window.start)));
    if (parts.length > 1) return Buffer.concat(parts);
    // A small read is copied out of its window: a view of it would keep the whole window alive for as long as the
    // caller keeps the view, and zip.js keeps each entry's local header (a 2.5 GB archive of 300 entries so pinned
    // a window per entry: 2.7 GB held by the end of its check). Big reads are data, used and dropped.
    return end - offset <= COPY_AT_MOST ? new Uint8Array(parts[0]!) : parts[0]!;
  }

  /**
   * Marks bytes no reader is expected to need: no window reaches into them and read-ahead goes past them. A read
   * of them after all still gets them, but only what it asks for.
   */
  skip(ranges: [start: number, end: number][]): void {
    this.#skipped = mergeRanges([...this.#skipped, ...ranges.filter(([start, end]) => start < end)]);
  }

  /** Drops every window (a closed source holds no memory). */
  clear(): void {
    this.#windows = [];
    this.#fetched = [];
    this.#skipped = [];
  }

  /** The skipped range `at` lies in, if any. */
  #skippedRangeAt(at: number): [number, number] | undefined {
    const range = this.#skipped[firstAfter(this.#skipped, at) - 1];
    return range && at < range[1] ? range : undefined;
  }

  #readAhead(start: number) {
    // Merged ranges never touch, so the end of the one `start` is in is not skipped.
    start = this.#skippedRangeAt(start)?.[1] ?? start;
    // Past an entry's end lies the next entry, which another reader has often fetched and read already.
    if (start >= this.size || this.#fetched.some(([from, to]) => from <= start && start < to)) return;
    this.#fetch(start, this.options.windowSize).bytes.catch(() => {}); // a reader that needs it sees the error
  }

  /** A new window from `start`, up to `length` bytes but never into the next cached one or skipped range. */
  #fetch(start: number, length: number): Window {
    const nextSkipped = this.#skipped[firstAfter(this.#skipped, start)]?.[0] ?? Infinity;
    const end = Math.min(this.size, start + length, nextSkipped, ...this.#windows.filter((w) => w.start > start).map((w) => w.start));
    const window: Window = { start, end, readTo: start, bytes: this.fetchRange(start, end - start) };
    this.#remember(start, end);
    // A failed fetch is not kept: the next read of that range tries again.
    window.bytes.catch(() => (this.#windows = this.#windows.filter((w) => w !== window)));
    this.#windows.push(window);
    if (this.#windows.length > this.options.maxWindows) {
      // Readers go front to back, so a window read to its end is done with: it goes first, then the least recent.
      const spent = this.#windows.findIndex((w) => w.readTo >= w.end);
      this.#windows.splice(Math.max(spent, 0), 1);
    }
    return window;
  }

  #remember(start: number, end: number) {
    this.#fetched = mergeRanges([...this.#fetched, [start, end]]);
  }

  #touch(window: Window) {
    this.#windows = [...this.#windows.filter((w) => w !== window), window];
  }
}

interface Window {
  start: number;
  end: number;
  /** How far reads have gone into it. */
  readTo: number;
  bytes: Promise<Uint8Array>;
}

/** The ranges sorted, with overlapping and touching ones joined. */
function mergeRanges(ranges: [number, number][]): [number, number][] {
  const merged: [number, number][] = [];
  for (const range of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = merged.at(-1);
    if (last && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
    else merged.push([...range]);
  }
  return merged;
}

/** Index of the first of the sorted `ranges` that starts after `at` (binary search). */
function firstAfter(ranges: [number, number][], at: number): number {
  let low = 0;
  let high = ranges.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (ranges[middle]![0] <= at) low = middle + 1;
    else high = middle;
  }
  return low;
}
