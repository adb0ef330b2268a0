// A thin shell: hashes the file it is sent, off the caller's thread (src/fs/file-digest.ts).
import { fileSystemCause } from "../src/errors.ts";
import { fileSha256Sync, type FileDigestReply, type FileDigestRequest } from "../src/fs/file-digest.ts";

declare const self: Worker;

self.onmessage = ({ data: { path, identity } }: MessageEvent<FileDigestRequest>) => {
  let reply: FileDigestReply;
  try {
    reply = { sha256: fileSha256Sync(path, identity) };
  } catch (error) {
    // The runtime's own message names the file's absolute path: only its cause goes back.
    const cause = fileSystemCause(error);
    reply = { error: cause ? `The archive could not be read for its checksum: ${cause}.` : error instanceof Error ? error.message : String(error) };
  }
  self.postMessage(reply);
};
