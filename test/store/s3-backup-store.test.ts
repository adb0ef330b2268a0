import { afterAll, beforeAll, describe } from "bun:test";
import { S3BackupStore } from "../../src/store/s3-backup-store.ts";
import { startS3rver, type S3Server } from "../support/s3rver.ts";
import { runStoreContract } from "../support/store-contract.ts";

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(() => s3.stop());

describe("S3BackupStore against s3rver", () => {
  // One bucket for the suite, emptied before each test; 5 MiB parts (S3's minimum) so 3.5 MB writes are one part
  // and the larger ones in the end-to-end tests are several.
  runStoreContract(async () => {
    const store = new S3BackupStore(s3.descriptor({ partSize: 5 * 1024 * 1024 }));
    for (const item of await store.list()) await store.delete(item.key);
    return store;
  });
});
