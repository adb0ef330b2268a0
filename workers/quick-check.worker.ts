// A thin shell: runs PRAGMA quick_check on the database file it is sent, off the caller's thread.
import { quickCheck, type QuickCheckReply } from "../src/db/quick-check.ts";

declare const self: Worker;

self.onmessage = async ({ data: path }: MessageEvent<string>) => {
  let reply: QuickCheckReply;
  try {
    reply = { problems: await quickCheck(path) };
  } catch (error) {
    reply = { error: error instanceof Error ? error.message : String(error) };
  }
  self.postMessage(reply);
};
