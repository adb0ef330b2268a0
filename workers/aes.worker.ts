// A thin shell: applies entries' WinZip AES ciphers to the pieces it is sent, in place in shared memory, in the
// order they come (`aes-worker.ts`).
import { aesRequestHandler, type AesReply, type AesRequest } from "../src/archive/engine/aes-worker.ts";

declare const self: Worker;

const handle = aesRequestHandler((reply) => self.postMessage(reply satisfies AesReply));
self.onmessage = ({ data: request }: MessageEvent<AesRequest>) => handle(request);
