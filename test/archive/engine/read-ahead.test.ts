// readingAhead: reads in order, the next one started as the one before is handed out but never before it is
// done, and a read never reached that fails is no unhandled rejection.
import { expect, test } from "bun:test";
import { readingAhead } from "../../../src/archive/engine/index.ts";

const ranges = [{ offset: 0, length: 3 }, { offset: 3, length: 5 }, { offset: 8, length: 2 }];

test("each range's bytes in order, the next read asked for before the consumer asks for it", async () => {
  const asked: number[] = [];
  const read = async (offset: number, length: number) => {
    asked.push(offset);
    return new Uint8Array(length).fill(offset);
  };
  const seen: string[] = [];
  for await (const { offset, length, bytes } of readingAhead(read, ranges)) {
    // While this range is used, the next one is already on its way (and no further).
    const next = ranges.findIndex((r) => r.offset === offset) + 1;
    expect(asked).toEqual(ranges.slice(0, Math.min(next + 1, ranges.length)).map((r) => r.offset));
    expect(bytes.length).toBe(length);
    seen.push(`${offset}:${bytes[0]}`);
  }
  expect(seen).toEqual(["0:0", "3:3", "8:8"]);
});

test("a read starts only once the one before it is done, however slow it is", async () => {
  let inFlight = 0;
  let most = 0;
  const read = async (_offset: number, length: number) => {
    most = Math.max(most, ++inFlight);
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    inFlight--;
    return new Uint8Array(length);
  };
  let seen = 0;
  for await (const _ of readingAhead(read, ranges)) seen++;
  expect({ seen, most }).toEqual({ seen: 3, most: 1 });
});

test("a consumer that stops early leaves the read ahead of it settled quietly, even when it fails", async () => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on("unhandledRejection", onRejection);
  try {
    const read = async (offset: number, length: number) => {
      if (offset > 0) throw new Error("the disk went away");
      return new Uint8Array(length);
    };
    for await (const { offset } of readingAhead(read, ranges)) {
      expect(offset).toBe(0);
      break;
    }
    // A failure the consumer reaches is its own.
    const reached = (async () => {
      for await (const _ of readingAhead(read, ranges)) void _;
    })();
    await expect(reached).rejects.toThrow("the disk went away");
    await new Promise((resolve) => setImmediate(resolve));
    expect(rejections).toEqual([]);
  } finally {
    process.off("unhandledRejection", onRejection);
  }
});
