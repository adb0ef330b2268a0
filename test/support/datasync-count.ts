// Counts the fdatasync calls that node:fs/promises FileHandles make while `run` runs (the real calls, passed
// through), with BACKSTREAM_FLUSH_AFTER_MB set to `flushAfterMb` meanwhile (unset when undefined): what the
// write-behind tests observe.
import { open, rm } from "node:fs/promises";
import { join } from "node:path";

export async function countingDatasyncs(dir: string, flushAfterMb: string | undefined, run: () => Promise<void>): Promise<number> {
  const probePath = join(dir, ".datasync-probe");
  const probe = await open(probePath, "w");
  const proto = Object.getPrototypeOf(probe) as { datasync: (this: unknown) => Promise<void> };
  await probe.close();
  await rm(probePath);
  const original = proto.datasync;
  let calls = 0;
  proto.datasync = function () {
    calls++;
    return original.call(this);
  };
  const before = process.env.BACKSTREAM_FLUSH_AFTER_MB;
  if (flushAfterMb === undefined) delete process.env.BACKSTREAM_FLUSH_AFTER_MB;
  else process.env.BACKSTREAM_FLUSH_AFTER_MB = flushAfterMb;
  try {
    await run();
    return calls;
  } finally {
    proto.datasync = original;
    if (before === undefined) delete process.env.BACKSTREAM_FLUSH_AFTER_MB;
    else process.env.BACKSTREAM_FLUSH_AFTER_MB = before;
  }
}
