/**
 * A streaming `multipart/form-data` reader: each part's body is a stream read straight off the request,
 * so an upload of any size passes through in chunks. (The parsers on npm that handle web streams buffer
 * every part whole, which is what a 2 GB upload must not do.)
 */

export interface MultipartPart {
  name: string;
  filename?: string;
  contentType?: string;
  /** The part's body. Read it to the end (or cancel it) before asking for the next part. */
  body: ReadableStream<Uint8Array>;
}

export class MultipartError extends Error {
  override name = "MultipartError";
}

const CRLF = Buffer.from("\r\n");
const HEADER_END = Buffer.from("\r\n\r\n");
const MAX_HEADER_BYTES = 16 * 1024;

/** The boundary of a `multipart/form-data` content type, or undefined when it is not one. */
export function multipartBoundary(contentType: string | null): string | undefined {
  if (!contentType || !/^multipart\/form-data\s*(;|$)/i.test(contentType)) return undefined;
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  return boundary && boundary.length <= 200 ? boundary : undefined;
}

/** Yields the parts of a multipart body in order. Throws `MultipartError` on malformed input. */
export async function* readMultipart(body: ReadableStream<Uint8Array>, boundary: string): AsyncGenerator<MultipartPart> {
  const reader = body.getReader();
  // Starting with CRLF lets the first delimiter match the same "\r\n--boundary" as all the others.
  let buffer: Buffer = Buffer.from(CRLF);
  let ended = false;
  const delimiter = Buffer.from(`\r\n--${boundary}`);

  const fill = async (): Promise<boolean> => {
    if (ended) return false;
    const { done, value } = await reader.read();
    if (done) {
      ended = true;
      return false;
    }
    buffer = buffer.length ? Buffer.concat([buffer, value]) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return true;
  };

  // Skip the preamble up to the first delimiter.
  for (;;) {
    const at = buffer.indexOf(delimiter);
    if (at >= 0) {
      buffer = buffer.subarray(at + delimiter.length);
      break;
    }
    buffer = buffer.subarray(Math.max(0, buffer.length - delimiter.length));
    if (!(await fill())) throw new MultipartError("The multipart body has no boundary.");
  }

  try {
    for (;;) {
      while (buffer.length < 2) if (!(await fill())) throw new MultipartError("The multipart body ends early.");
      if (buffer[0] === 0x2d && buffer[1] === 0x2d) return; // "--": the closing delimiter
      let headerEnd = buffer.indexOf(HEADER_END);
      while (headerEnd < 0) {
        if (buffer.length > MAX_HEADER_BYTES) throw new MultipartError("A multipart part has oversized headers.");
        if (!(await fill())) throw new MultipartError("The multipart body ends inside part headers.");
        headerEnd = buffer.indexOf(HEADER_END);
      }
      // The delimiter line may carry whitespace before its CRLF; headers start after that CRLF.
      const lineEnd = buffer.indexOf(CRLF);
      const headers = parseHeaders(buffer.subarray(lineEnd + 2, headerEnd + 2).toString("utf8"));
      buffer = buffer.subarray(headerEnd + 4);

      let partDone = false;
      let resolvePart!: () => void;
      let rejectPart!: (error: Error) => void;
      const consumed = new Promise<void>((resolve, reject) => {
        resolvePart = resolve;
        rejectPart = reject;
      });
      consumed.catch(() => {}); // awaited below; this only keeps an abandoned part from being "unhandled"

      const partBody = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            for (;;) {
              const at = buffer.indexOf(delimiter);
              if (at >= 0) {
                if (at > 0) controller.enqueue(new Uint8Array(buffer.subarray(0, at)));
                buffer = buffer.subarray(at + delimiter.length);
                partDone = true;
                controller.close();
                resolvePart();
                return;
              }
              // Keep a tail that could be the start of a delimiter split across chunks.
              const safe = buffer.length - (delimiter.length - 1);
              if (safe > 0) {
                controller.enqueue(new Uint8Array(buffer.subarray(0, safe)));
                buffer = buffer.subarray(safe);
                return;
              }
              if (!(await fill())) throw new MultipartError("The multipart body ends inside a part.");
            }
          } catch (error) {
            controller.error(error);
            rejectPart(error as Error);
          }
        },
        async cancel() {
          // Skip the rest of this part so the next one can be read.
          try {
            for (;;) {
              const at = buffer.indexOf(delimiter);
              if (at >= 0) {
                buffer = buffer.subarray(at + delimiter.length);
                break;
              }
              buffer = buffer.subarray(Math.max(0, buffer.length - (delimiter.length - 1)));
              if (!(await fill())) throw new MultipartError("The multipart body ends inside a part.");
            }
            partDone = true;
            resolvePart();
          } catch (error) {
            rejectPart(error as Error);
          }
        },
      }, { highWaterMark: 0 });
      yield { ...headers, body: partBody };
      if (!partDone) await partBody.cancel().catch(() => {});
      await consumed;
    }
  } finally {
    reader.releaseLock();
  }
}

function parseHeaders(text: string): Omit<MultipartPart, "body"> {
  const result: Omit<MultipartPart, "body"> = { name: "" };
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === "content-type") result.contentType = value;
    if (key === "content-disposition") {
      const name = dispositionParam(value, "name");
      const filename = dispositionParam(value, "filename");
      if (name !== undefined) result.name = name;
      if (filename !== undefined) result.filename = filename;
    }
  }
  return result;
}

function dispositionParam(value: string, param: string): string | undefined {
  const match = new RegExp(`;\\s*${param}=(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]+))`, "i").exec(value);
  if (!match) return undefined;
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, "$1") : match[2];
}
