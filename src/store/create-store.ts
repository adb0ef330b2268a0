import type { BackupStore, StoreDescriptor } from "./backup-store.ts";
import { LocalBackupStore } from "./local-backup-store.ts";

/** Builds a store from its descriptor; workers call this to rebuild the server's store on their side. */
export async function createStore(descriptor: StoreDescriptor): Promise<BackupStore> {
  if (descriptor.kind === "local") return new LocalBackupStore(descriptor.dir);
  const { S3BackupStore } = await import("./s3-backup-store.ts");
  return new S3BackupStore(descriptor);
}
