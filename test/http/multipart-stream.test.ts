import { describe, expect, test } from "bun:test";
import { MultipartError, multipartBoundary, readMultipart } from "../../src/http/multipart-stream.ts";

/** A body delivered in chunks of the given size, to put boundaries across chunk edges. */
function chunked(text: string | Uint8Array, size: number): ReadableStream<Uint8Array> {
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

async function collect(body: ReadableStream<Uint8Array>, boundary: string) {
  const parts: { name: string; filename?: string; text: string }[] = [];
  for await (const part of readMultipart(body, boundary)) {
    const { name, filename } = part;
    parts.push({ name, ...(filename !== undefined ? { filename } : {}), text: await new Response(part.body).text() });
  }
  return parts;
}

const body = [
  "preamble\r\n--XyZ\r\n",
  'Content-Disposition: form-data; name="note"\r\n\r\nhello\r\n--XyZ\r\n',
  'Content-Disposition: form-data; name="file"; filename="a \\"b\\".zip"\r\nContent-Type: application/zip\r\n\r\n',
  "data with --XyZ lookalike\r\n--Xy and \r\n-- more\r\n--XyZ--\r\n",
].join("");

describe("readMultipart", () => {
  for (const size of [1, 2, 3, 7, 64, 100000]) {
    test(`parses parts split into ${size}-byte chunks`, async () => {
      expect(await collect(chunked(body, size), "XyZ")).toEqual([
        { name: "note", text: "hello" },
        { name: "file", filename: 'a "b".zip', text: "data with --XyZ lookalike\r\n--Xy and \r\n-- more" },
      ]);
    });
  }

  test("skipping a part's body still reaches the next part", async () => {
    const names: string[] = [];
    for await (const part of readMultipart(chunked(body, 5), "XyZ")) names.push(part.name);
    expect(names).toEqual(["note", "file"]);
  });

  test("a body that ends inside a part is an error, not a short file", async () => {
    const truncated = body.slice(0, body.indexOf("lookalike"));
    await expect(collect(chunked(truncated, 10), "XyZ")).rejects.toBeInstanceOf(MultipartError);
  });

  test("binary content passes through unchanged", async () => {
    const payload = crypto.getRandomValues(new Uint8Array(300_000));
    const head = new TextEncoder().encode('--b\r\nContent-Disposition: form-data; name="file"; filename="x.zip"\r\n\r\n');
    const tail = new TextEncoder().encode("\r\n--b--\r\n");
    const all = new Uint8Array([...head, ...payload, ...tail]);
    for await (const part of readMultipart(chunked(all, 4093), "b")) {
      expect(Buffer.from(await new Response(part.body).arrayBuffer()).equals(Buffer.from(payload))).toBe(true);
    }
  });

  test("multipartBoundary reads only multipart/form-data", () => {
    expect(multipartBoundary('multipart/form-data; boundary="a b"')).toBe("a b");
    expect(multipartBoundary("multipart/form-data; charset=utf-8; boundary=xyz")).toBe("xyz");
    expect(multipartBoundary("application/json")).toBeUndefined();
    expect(multipartBoundary("multipart/form-data")).toBeUndefined();
  });
});
