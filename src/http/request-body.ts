import { bodyTooLarge, unparsableBody } from "../errors.ts";

/** Every route but the upload refuses bodies over 32 MiB (SPEC.md §1). */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** Reads a small body, refusing it past the limit whether or not the client declared its length. */
async function readLimitedBody(request: Request): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw bodyTooLarge();
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of request.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) throw bodyTooLarge();
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/**
 * Parses a JSON, urlencoded or multipart body into plain fields, as PocketBase accepts all three.
 * An empty body is `{}`; a body that cannot be parsed is the spec's "could not load" error.
 */
export async function readFields(request: Request): Promise<Record<string, unknown>> {
  const bytes = await readLimitedBody(request);
  if (bytes.length === 0) return {};
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  try {
    if (type.startsWith("multipart/form-data") || type.startsWith("application/x-www-form-urlencoded")) {
      const form = await new Response(bytes, { headers: { "content-type": type } }).formData();
      const fields: Record<string, unknown> = {};
      form.forEach((value, key) => {
        if (typeof value === "string") fields[key] = value;
      });
      return fields;
    }
    const json: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    if (json === null || typeof json !== "object" || Array.isArray(json)) throw new Error("not an object");
    return json as Record<string, unknown>;
  } catch {
    throw unparsableBody();
  }
}
