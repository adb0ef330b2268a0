import { Client } from "minio";

/**
 * A fault-injecting HTTP proxy between the S3 client and s3rver, for the eventual-consistency and outage
 * tests: it can hide the newest objects from listings, fail or drop upload requests, and go down entirely.
 * Requests keep their Host header, so S3 signatures still match.
 */
export interface FaultProxy {
  endpoint: string;
  /** Listings omit the newest object this many times. */
  hideNewestInListings: number;
  /** The next UploadPart requests answered 503 without reaching s3rver. */
  failUploadParts: number;
  /** The next UploadPart requests whose connection is cut before an answer. */
  dropUploadParts: number;
  /** The next CompleteMultipartUpload requests that s3rver carries out but whose answer is cut off. */
  loseCompletionAnswers: number;
  /** Every request is refused at the connection: the endpoint is down. */
  down(): void;
  up(): void;
  /** How many UploadPart requests reached s3rver. */
  uploadedParts: number;
  /** Each UploadPart waits this long before it is passed on: a slow link. */
  uploadPartDelayMs: number;
  /** The most UploadPart requests seen in flight at once. */
  maxUploadPartsAtOnce: number;
  /** Bytes s3rver sent in answer to ranged GETs (random-access reads of an archive). */
  rangeBytesRead: number;
  /** Once `rangeBytesRead` reaches this, ranged GETs are answered 503 without reaching s3rver. */
  failRangeReadsAfterBytes: number;
  /** Ranged GETs still to answer with half their body, the connection then ended cleanly (a cut-short answer). */
  cutRangeReads: number;
  /** CopyObject requests (server-side copies) that reached s3rver. */
  copies: number;
  /** GETs of checksum sidecars (`.meta/…`). */
  sidecarReads: number;
  /** HEAD requests (object lookups). */
  heads: number;
  /**
   * Serve UploadPartCopy, which s3rver does not implement: the proxy reads the source range from s3rver and
   * uploads it as the part, so a test can run a server-side multipart copy end to end.
   */
  servePartCopies: boolean;
  /** The UploadPartCopy requests served: their part numbers and source ranges (`bytes=a-b`). */
  partCopies: { part: number; range: string }[];
  /** The next UploadPartCopy requests answered 503 without being served. */
  failPartCopies: number;
  stop(): Promise<void>;
}

export function startFaultProxy(target: string): FaultProxy {
  let server: ReturnType<typeof Bun.serve> | undefined;
  let port = 0;
  let partsInFlight = 0;
  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const isUploadPart = request.method === "PUT" && url.searchParams.has("partNumber") && url.searchParams.has("uploadId");
    if (isUploadPart && proxy.failUploadParts > 0) {
      proxy.failUploadParts--;
      await request.arrayBuffer();
      return new Response("<Error><Code>ServiceUnavailable</Code><Message>Try again</Message></Error>", { status: 503, headers: { "content-type": "application/xml" } });
    }
    if (isUploadPart && proxy.dropUploadParts > 0) {
      proxy.dropUploadParts--;
      await request.arrayBuffer();
      // A body that fails before its first byte makes the server reset the connection: the client sees the
      // socket hang up with no answer. (An idle timeout would do too, but its timer ticks every 4 s.)
      return new Response(new ReadableStream({ pull: (controller) => controller.error(undefined) }));
    }
    if (request.method === "GET" && request.headers.has("range") && proxy.rangeBytesRead >= proxy.failRangeReadsAfterBytes) {
      return new Response("<Error><Code>ServiceUnavailable</Code><Message>Try again</Message></Error>", { status: 503, headers: { "content-type": "application/xml" } });
    }
    if (isUploadPart && proxy.servePartCopies && request.headers.has("x-amz-copy-source")) return copyPart(request, url);
    if (isUploadPart) {
      partsInFlight++;
      proxy.maxUploadPartsAtOnce = Math.max(proxy.maxUploadPartsAtOnce, partsInFlight);
      if (proxy.uploadPartDelayMs > 0) await Bun.sleep(proxy.uploadPartDelayMs);
    }
    const headers = new Headers(request.headers);
    const forwarded = await fetch(`${target}${url.pathname}${url.search}`, {
      method: request.method,
      headers,
      ...(request.method === "GET" || request.method === "HEAD" ? {} : { body: await request.arrayBuffer() }),
      redirect: "manual",
    });
    if (isUploadPart) {
      proxy.uploadedParts++;
      partsInFlight--;
    }
    const isCompletion = request.method === "POST" && url.searchParams.has("uploadId");
    if (isCompletion && forwarded.ok && proxy.loseCompletionAnswers > 0) {
      proxy.loseCompletionAnswers--;
      await forwarded.arrayBuffer();
      return new Response(new ReadableStream({ pull: (controller) => controller.error(undefined) }));
    }
    if (request.method === "PUT" && request.headers.has("x-amz-copy-source")) proxy.copies++;
    if (request.method === "GET" && url.pathname.includes("/.meta/")) proxy.sidecarReads++;
    if (request.method === "HEAD") proxy.heads++;
    if (request.method === "GET" && request.headers.has("range")) proxy.rangeBytesRead += Number(forwarded.headers.get("content-length") ?? 0);
    const isListing = request.method === "GET" && url.searchParams.get("list-type") === "2";
    if (isListing && proxy.hideNewestInListings > 0) {
      proxy.hideNewestInListings--;
      const xml = await forwarded.text();
      const entries = [...xml.matchAll(/<Contents>[\s\S]*?<\/Contents>/g)].map((m) => m[0]);
      const newest = entries.sort((a, b) => modified(b) - modified(a))[0];
      const out = newest ? xml.replace(newest, "") : xml;
      const responseHeaders = new Headers(forwarded.headers);
      responseHeaders.delete("content-length");
      return new Response(out, { status: forwarded.status, headers: responseHeaders });
    }
    const responseHeaders = new Headers(forwarded.headers);
    responseHeaders.delete("content-encoding");
    if (request.method === "GET" && request.headers.has("range") && forwarded.status === 206 && proxy.cutRangeReads > 0) {
      proxy.cutRangeReads--;
      const body = new Uint8Array(await forwarded.arrayBuffer());
      responseHeaders.delete("content-length");
      return new Response(body.subarray(0, body.length >> 1), { status: 206, headers: responseHeaders });
    }
    return new Response(forwarded.body, { status: forwarded.status, headers: responseHeaders });
  };
  const s3rver = new URL(target);
  const direct = new Client({ endPoint: s3rver.hostname, port: Number(s3rver.port), useSSL: false, accessKey: "S3RVER", secretKey: "S3RVER", pathStyle: true, region: "us-east-1" });
  const copyPart = async (request: Request, url: URL): Promise<Response> => {
    if (proxy.failPartCopies > 0) {
      proxy.failPartCopies--;
      return new Response("<Error><Code>ServiceUnavailable</Code><Message>Try again</Message></Error>", { status: 503, headers: { "content-type": "application/xml" } });
    }
    const [, bucket, ...key] = decodeURI(request.headers.get("x-amz-copy-source")!).split("/");
    const range = request.headers.get("x-amz-copy-source-range")!;
    const [start, end] = /^bytes=(\d+)-(\d+)$/.exec(range)!.slice(1).map(Number) as [number, number];
    const part = Number(url.searchParams.get("partNumber"));
    proxy.partCopies.push({ part, range });
    const body = await direct.getPartialObject(bucket!, key.join("/"), start, end - start + 1);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    const [destBucket, ...destKey] = decodeURIComponent(url.pathname).slice(1).split("/");
    const { etag } = await direct.uploadPart(
      { bucketName: destBucket!, objectName: destKey.join("/"), uploadID: url.searchParams.get("uploadId")!, partNumber: part, headers: {} },
      Buffer.concat(chunks),
    );
    return new Response(`<CopyPartResult><LastModified>${new Date().toISOString()}</LastModified><ETag>"${etag}"</ETag></CopyPartResult>`, {
      headers: { "content-type": "application/xml" },
    });
  };
  const listen = () => {
    server = Bun.serve({ port, hostname: "127.0.0.1", fetch: handle, idleTimeout: 0 });
    port = server.port!;
  };
  const proxy: FaultProxy = {
    endpoint: "",
    hideNewestInListings: 0,
    failUploadParts: 0,
    dropUploadParts: 0,
    loseCompletionAnswers: 0,
    uploadedParts: 0,
    uploadPartDelayMs: 0,
    maxUploadPartsAtOnce: 0,
    rangeBytesRead: 0,
    failRangeReadsAfterBytes: Infinity,
    cutRangeReads: 0,
    copies: 0,
    sidecarReads: 0,
    heads: 0,
    servePartCopies: false,
    partCopies: [],
    failPartCopies: 0,
    down: () => {
      server?.stop(true);
      server = undefined;
    },
    up: () => {
      if (!server) listen();
    },
    stop: async () => {
      await server?.stop(true);
    },
  };
  listen();
  proxy.endpoint = `http://127.0.0.1:${port}`;
  return proxy;
}

function modified(entry: string): number {
  return Date.parse(/<LastModified>([^<]+)<\/LastModified>/.exec(entry)?.[1] ?? "") || 0;
}
