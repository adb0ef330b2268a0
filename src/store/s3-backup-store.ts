import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { Client, CopyDestinationOptions, CopySourceOptions } from "minio";
import { NotFoundError, StorageError } from "../errors.ts";
import type { BackupInfo, BackupStore, ByteRange, PendingWrite, RandomAccessSource, StoreDescriptor, WriteOptions } from "./backup-store.ts";
import { assertSafeKey } from "./keys.ts";
import { RangeCache } from "./range-cache.ts";
import { collectGarbage } from "../collect-garbage.ts";
import { RangeLengthError, readBody, readRange } from "./s3-bodies.ts";
import { copyLargeObject } from "./s3-large-copy.ts";
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from "./retry.ts";

type S3Descriptor = Extract<StoreDescriptor, { kind: "s3" }>;

/** Unpublished writes live under this prefix; listings only show keys at the bucket root. */
const TEMP_PREFIX = ".tmp/";
/** Checksums of backups written straight to their key (`.meta/<key>.sha256`), as the local store keeps them. */
const SIDECAR_PREFIX = ".meta/";
const sidecarOf = (key: string) => `${SIDECAR_PREFIX}${key}.sha256`;
const DEFAULT_PART_SIZE = 16 * 1024 * 1024;
/**
 * Parts uploading at once while the next fills. One connection to S3 rarely carries more than 40–100 MB/s, less
 * than an archive is made: with a link of 40 MB/s per request (simulated by a proxy), the bench's data set
 * backed up to s3rver in 12.5 s one part at a time, 7.5 s two at a time, 7.1 s three.
 */
const PARTS_UPLOADING = 2;
const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's limit for a single-request copy; larger archives are copied part by part (`s3-large-copy.ts`). */
const MAX_SINGLE_COPY = 5 * 1024 ** 3;
/** Random reads fetch at least this much and keep it, so zip.js's small sequential reads cost few requests. */
const READ_WINDOW = 8 * 1024 * 1024;
/** Windows kept per open archive: a current one and one read ahead for each of a restore's three readers. */
const READ_WINDOWS = 6;
/** How long a key just written or deleted elsewhere is waited for in listings and reads. */
const EXPECTATION_MS = 60_000;
const STALE_TEMP_MS = 24 * 3600 * 1000;

/**
 * Backups as objects at the root of an S3 bucket (MinIO, AWS, any S3-compatible store), through `minio`.
 *
 * Writes stream into a multipart upload, `PARTS_UPLOADING` parts going up while the next one fills. A
 * backup the server archives itself goes straight to its key: `commit` saves its SHA-256 beside it
 * (`.meta/<key>.sha256`) and completes the upload, which is when S3 shows the key. An upload to be checked
 * first goes to a temp object (`.tmp/<id>`), completed when the stream closes so that it can be read
 * (`openPending`); `commit` copies it to its key with the SHA-256 as metadata (`x-amz-meta-sha256`) and deletes
 * the temp object. Either way a key appears whole, with its checksum, or not at all.
 *
 * Object storage may be briefly inconsistent and networks fail for a moment: listings, stats and reads retry
 * with bounded backoff (`retry`), and listings also retry until keys this store was told about (`expect`)
 * agree. Every error becomes `NotFoundError` or a `StorageError` that names the problem without the secret.
 */
export class S3BackupStore implements BackupStore {
  readonly #client: Client;
  readonly #bucket: string;
  readonly #partSize: number;
  readonly #largeCopy: { maxSingleCopy: number; copyPartSize?: number };
  readonly #retry: RetryPolicy;
  readonly #expected = new Map<string, { present: boolean; until: number }>();

  constructor(descriptor: S3Descriptor) {
    const url = parseEndpoint(descriptor.endpoint);
    this.#client = new Client({
      endPoint: url.hostname,
      port: url.port,
      useSSL: url.useSSL,
      accessKey: descriptor.accessKey,
      secretKey: descriptor.secret,
      region: descriptor.region || "us-east-1",
      pathStyle: descriptor.forcePathStyle,
      // One retry policy, ours (documented in the README), instead of two stacked ones.
      retryOptions: { disableRetry: true },
    });
    this.#bucket = descriptor.bucket;
    this.#partSize = Math.max(MIN_PART_SIZE, descriptor.partSize ?? DEFAULT_PART_SIZE);
    this.#largeCopy = { maxSingleCopy: MAX_SINGLE_COPY, ...descriptor.largeCopy };
    this.#retry = descriptor.retry ?? DEFAULT_RETRY;
  }

  async list(): Promise<BackupInfo[]> {
    return this.#retrying("list the backups", async (attempt) => {
      const items = await this.#listRoot();
      const keys = new Set(items.map((i) => i.key));
      const disagreeing = [...this.#liveExpectations()].some(([key, want]) => keys.has(key) !== want.present);
      // A listing that misses a key we know was just written (or shows one just deleted) is stale: ask again.
      if (disagreeing && attempt < this.#retry.attempts) throw new StaleListingError();
      return items;
    });
  }

  async stat(key: string): Promise<BackupInfo> {
    const info = await this.#head(key);
    if (info.sha256) return info;
    const sha256 = await this.#retrying("look up the backup", () => this.#readSidecar(key), key);
    return sha256 ? { ...info, sha256 } : info;
  }

  /**
   * The object's size, date and, for an uploaded backup, its checksum from the metadata: all `read`, `open` and
   * `delete` need, without `stat`'s read of a sidecar.
   */
  async #head(key: string): Promise<BackupInfo> {
    assertSafeKey(key);
    return this.#retrying("look up the backup", async () => {
      try {
        const info = await this.#client.statObject(this.#bucket, key);
        const sha256 = (info.metaData as Record<string, string | undefined>)?.sha256;
        return { key, size: info.size, modified: new Date(info.lastModified), ...(sha256 ? { sha256 } : {}) };
      } catch (error) {
        // A key written a moment ago may not be visible yet: worth another try, unlike any other missing key.
        if (isNotFound(error) && this.#expectation(key)?.present) throw new StaleListingError();
        throw error;
      }
    }, key);
  }

  async read(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    await this.#head(key);
    const body = await this.#retrying("read the backup", () =>
      range
        ? this.#client.getPartialObject(this.#bucket, key, range.start, range.end - range.start + 1)
        : this.#client.getObject(this.#bucket, key), key);
    return Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>;
  }

  async open(key: string): Promise<RandomAccessSource> {
    const { size } = await this.#head(key);
    return this.#rangeReader(key, size);
  }

  async openPending(id: string): Promise<RandomAccessSource> {
    if (!/^[0-9a-f]{16}$/.test(id)) throw new NotFoundError("Unknown pending write.");
    const object = `${TEMP_PREFIX}${id}`;
    const info = await this.#retrying("read the pending backup", () => this.#client.statObject(this.#bucket, object), id);
    return this.#rangeReader(object, info.size);
  }

  async write(key: string, options: WriteOptions = {}): Promise<PendingWrite> {
    assertSafeKey(key);
    const checkBeforeCommit = options.checkBeforeCommit ?? true;
    const id = randomBytes(8).toString("hex");
    // A multipart upload is invisible until completed, so a backup that needs no check before it is published
    // goes straight to its key, completed at commit; one to be checked first is completed as a temp object,
    // readable by its id, and copied to its key at commit.
    const object = checkBeforeCommit ? `${TEMP_PREFIX}${id}` : key;
    const uploadId = await this.#retrying("start the upload", () => this.#client.initiateNewMultipartUpload(this.#bucket, object, {}));
    const parts: { part: number; etag: string }[] = [];
    const uploading = new Set<Promise<void>>();
    let partsStarted = 0;
    let uploadError: unknown;
    /**
     * The part being filled: chunks are copied in, so the stream is done with each once its write resolves (what
     * `PendingWrite.stream` promises; the archive's blocks are written from memory that is then reused).
     */
    let buffered: Buffer | undefined;
    let bufferedBytes = 0;
    let written = 0;
    let completed = false;
    let finished = false;

    const sendPart = (bytes: Buffer, part: number) =>
      this.#retrying(`upload part ${part}`, async () => {
        const result = await this.#client.uploadPart({ bucketName: this.#bucket, objectName: object, uploadID: uploadId, partNumber: part, headers: {} }, bytes);
        parts.push({ part, etag: result.etag });
        collectGarbage();
      });
    // Parts go up while the next one fills, PARTS_UPLOADING at once: memory stays bounded by one more part than
    // that. A failed part (after its retries) fails the next write or the close.
    const flush = async () => {
      const bytes = (buffered ?? Buffer.alloc(0)).subarray(0, bufferedBytes);
      buffered = undefined;
      bufferedBytes = 0;
      while (uploading.size >= PARTS_UPLOADING && uploadError === undefined) await Promise.race(uploading);
      if (uploadError !== undefined) throw uploadError;
      const upload: Promise<void> = sendPart(bytes, ++partsStarted)
        .catch((error) => void (uploadError ??= error))
        .finally(() => uploading.delete(upload));
      uploading.add(upload);
    };
    const uploaded = async () => {
      await Promise.all(uploading);
      if (uploadError !== undefined) throw uploadError;
    };
    const complete = async () => {
      parts.sort((a, b) => a.part - b.part);
      await this.#retrying("finish the upload", () => this.#client.completeMultipartUpload(this.#bucket, object, uploadId, parts));
      completed = true;
    };
    const abortUpload = async () => {
      if (finished) return;
      finished = true;
      await Promise.all(uploading);
      if (!completed) {
        // Some servers (s3rver) refuse AbortMultipartUpload; an unfinished upload is never an object anyway.
        await this.#client.abortMultipartUpload(this.#bucket, object, uploadId).catch(() => {});
      }
      // Only a temp object is ever removed here: under the key, an uncompleted upload left nothing to remove.
      if (checkBeforeCommit) await this.#client.removeObject(this.#bucket, object).catch(() => {});
    };

    const stream = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        written += chunk.length;
        for (let at = 0; at < chunk.length; ) {
          buffered ??= Buffer.allocUnsafe(this.#partSize);
          const n = Math.min(this.#partSize - bufferedBytes, chunk.length - at);
          buffered.set(chunk.subarray(at, at + n), bufferedBytes);
          bufferedBytes += n;
          at += n;
          if (bufferedBytes === this.#partSize) await flush();
        }
      },
      close: async () => {
        if (bufferedBytes > 0 || partsStarted === 0) await flush();
        await uploaded();
        if (checkBeforeCommit) await complete();
      },
      abort: abortUpload,
    });

    const publishTemp = async (sha256: string) => {
      await this.#retrying("publish the backup", () => this.#copy(object, key, written, { sha256 }), key);
      finished = true;
      await this.#client.removeObject(this.#bucket, object).catch(() => {});
    };
    // The checksum goes first, as a sidecar (an object's metadata is fixed when its upload starts, before the
    // checksum is known): the key never appears without it.
    const publishDirect = async (sha256: string) => {
      const sidecar = sidecarOf(key);
      await this.#retrying("save the checksum", () => this.#client.putObject(this.#bucket, sidecar, Buffer.from(sha256)), key);
      try {
        await complete();
      } catch (error) {
        // A completion carried out but whose answer was lost fails its retries (the upload is gone): the
        // object is then there, whole.
        const landed = await this.#client.statObject(this.#bucket, key).then((info) => info.size === written, () => false);
        if (!landed) {
          await this.#client.removeObject(this.#bucket, sidecar).catch(() => {});
          throw error;
        }
      }
      finished = true;
    };
    return {
      id: checkBeforeCommit ? id : "",
      stream,
      commit: async (sha256) => {
        await (checkBeforeCommit ? publishTemp(sha256) : publishDirect(sha256));
        this.expect(key, true);
      },
      abort: abortUpload,
    };
  }

  async delete(key: string): Promise<void> {
    await this.#head(key);
    await this.#retrying("delete the backup", () => this.#client.removeObject(this.#bucket, key), key);
    await this.#client.removeObject(this.#bucket, sidecarOf(key)).catch(() => {});
    this.expect(key, false);
  }

  async cleanup(): Promise<void> {
    const stale = Date.now() - STALE_TEMP_MS;
    const temps = await this.#listObjects(TEMP_PREFIX);
    for (const object of temps) {
      if (object.lastModified.getTime() < stale) await this.#client.removeObject(this.#bucket, object.name).catch(() => {});
    }
    // A checksum whose backup never completed (a crash between the two) or was deleted elsewhere. Only day-old
    // ones: a backup's checksum is saved just before its upload completes, so its backup is as old. They are held
    // against one listing of the backups, not a lookup each (a bucket of a thousand backups, a thousand HEADs).
    const staleSidecars = (await this.#listObjects(SIDECAR_PREFIX)).filter((s) => s.lastModified.getTime() < stale);
    if (staleSidecars.length === 0) return;
    const backups = new Set((await this.#listRoot()).map((item) => item.key));
    for (const sidecar of staleSidecars) {
      const key = sidecar.name.slice(SIDECAR_PREFIX.length).replace(/\.sha256$/, "");
      if (!backups.has(key)) await this.#client.removeObject(this.#bucket, sidecar.name).catch(() => {});
    }
  }

  expect(key: string, present: boolean): void {
    this.#expected.set(key, { present, until: Date.now() + EXPECTATION_MS });
  }

  /** Writes and deletes a probe object: what `POST /api/settings/test/s3` runs. */
  async probe(): Promise<void> {
    const key = `${TEMP_PREFIX}probe-${randomBytes(6).toString("hex")}`;
    try {
      await this.#client.putObject(this.#bucket, key, Buffer.from("backstream probe"));
      await this.#client.removeObject(this.#bucket, key);
    } catch (error) {
      throw toStorageError("write a test object", error, this.#bucket);
    }
  }

  async #copy(from: string, to: string, size: number, metadata: Record<string, string>) {
    const { maxSingleCopy, ...partSizes } = this.#largeCopy;
    if (size > maxSingleCopy) {
      await copyLargeObject(this.#client, this.#bucket, from, to, metadata, { streamPartSize: this.#partSize, ...partSizes });
      return;
    }
    const dest = new CopyDestinationOptions({ Bucket: this.#bucket, Object: to, UserMetadata: metadata, MetadataDirective: "REPLACE" });
    const source = new CopySourceOptions({ Bucket: this.#bucket, Object: from });
    await this.#client.copyObject(source, dest);
  }

  /** The checksum a backup written straight to its key keeps beside it; none for other objects. */
  async #readSidecar(key: string): Promise<string | undefined> {
    try {
      const text = (await readBody(await this.#client.getObject(this.#bucket, sidecarOf(key)))).toString("utf8").trim();
      return /^[0-9a-f]{64}$/.test(text) ? text : undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  #rangeReader(object: string, size: number): RandomAccessSource {
    // The archive's reader collects the garbage its windows leave (`readArchive`).
    const fetchRange = (offset: number, length: number) =>
      this.#retrying("read the backup", async () => readRange(await this.#client.getPartialObject(this.#bucket, object, offset, length), length));
    const cache = new RangeCache(size, fetchRange, { windowSize: READ_WINDOW, maxWindows: READ_WINDOWS });
    return {
      size,
      read: (offset, length) => cache.read(offset, length),
      skip: (ranges) => cache.skip(ranges),
      close: async () => cache.clear(),
    };
  }

  async #listRoot(): Promise<BackupInfo[]> {
    const objects = await this.#listObjects("");
    return objects
      .filter((o) => o.name && !o.name.includes("/") && !o.name.startsWith("."))
      .map((o) => ({ key: o.name, size: o.size, modified: o.lastModified }));
  }

  #listObjects(prefix: string): Promise<{ name: string; size: number; lastModified: Date }[]> {
    return new Promise((resolve, reject) => {
      const found: { name: string; size: number; lastModified: Date }[] = [];
      const stream = this.#client.listObjectsV2(this.#bucket, prefix, prefix !== "");
      stream.on("data", (item) => {
        if (item.name) found.push({ name: item.name, size: item.size, lastModified: new Date(item.lastModified) });
      });
      stream.on("error", reject);
      stream.on("end", () => resolve(found));
    });
  }

  *#liveExpectations() {
    const now = Date.now();
    for (const [key, want] of this.#expected) {
      if (want.until < now) this.#expected.delete(key);
      else yield [key, want] as const;
    }
  }

  #expectation(key: string) {
    const want = this.#expected.get(key);
    return want && want.until >= Date.now() ? want : undefined;
  }

  /** Retries what may pass on a second try; maps the final error to NotFound or a clear StorageError. */
  async #retrying<T>(action: string, task: (attempt: number) => Promise<T>, key?: string): Promise<T> {
    try {
      return await withRetry(task, this.#retry, isTransient);
    } catch (error) {
      if (error instanceof StaleListingError) {
        if (key) throw new NotFoundError(`Backup ${key} not found.`);
        throw new StorageError(`Failed to ${action}: the bucket's listing stayed out of date.`);
      }
      if (isNotFound(error)) throw new NotFoundError(key ? `Backup ${key} not found.` : "Not found.");
      throw toStorageError(action, error, this.#bucket);
    }
  }
}

/** A listing or stat that disagrees with what this store knows was just written: retried. */
class StaleListingError extends Error {
  override name = "StaleListingError";
}

function errorCode(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown };
  return typeof e?.code === "string" ? e.code : typeof e?.name === "string" ? e.name : "";
}

function isNotFound(error: unknown): boolean {
  return ["NotFound", "NoSuchKey"].includes(errorCode(error));
}

const PERMANENT = new Set([
  "NotFound", "NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
  "InvalidBucketName", "InvalidArgument", "InvalidRequest", "EntityTooSmall", "InvalidPart",
]);

/** Network failures and 5xx answers may pass on a second try; the server's refusals will not. */
function isTransient(error: unknown): boolean {
  if (error instanceof StaleListingError || error instanceof RangeLengthError) return true;
  const code = errorCode(error);
  if (PERMANENT.has(code)) return false;
  const status = (error as { statusCode?: unknown })?.statusCode;
  if (typeof status === "number" && status >= 400 && status < 500 && status !== 429) return false;
  return true;
}

/** A message that names the problem, for logs and API answers: never the secret, a stack or a raw XML body. */
function toStorageError(action: string, error: unknown, bucket: string): StorageError {
  if (error instanceof StorageError) return error;
  const code = errorCode(error);
  const reason =
    code === "NoSuchBucket" ? `the bucket "${bucket}" does not exist` :
    ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"].includes(code) ? `S3 refused the credentials (${code})` :
    ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNRESET", "EHOSTUNREACH", "ConnectionRefused", "FailedToOpenSocket"].includes(code) ? `the S3 endpoint cannot be reached (${code})` :
    code && code !== "Error" ? `S3 answered ${code}` :
    httpStatus(error) ? `S3 answered HTTP ${httpStatus(error)}` : "the S3 request failed";
  return new StorageError(`Failed to ${action}: ${reason}.`);
}

/**
 * The HTTP status of a failed answer, where the client gives one: as a property, or in the message of the client's
 * own retries ("Request failed after 1 retries: Error: Retryable HTTP status: 503"), which carries no code.
 */
function httpStatus(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown })?.statusCode;
  if (typeof status === "number") return status;
  const found = /HTTP status:? (\d{3})\b/.exec(String((error as Error)?.message ?? ""));
  return found ? Number(found[1]) : undefined;
}

function parseEndpoint(endpoint: string): { hostname: string; port?: number; useSSL: boolean } {
  let url: URL;
  try {
    url = new URL(/^[a-z]+:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`);
  } catch {
    throw new StorageError("The S3 endpoint is not a valid URL.");
  }
  const useSSL = url.protocol === "https:";
  return { hostname: url.hostname, useSSL, ...(url.port ? { port: Number(url.port) } : {}) };
}

