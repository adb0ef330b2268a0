import { describe, expect, test } from "bun:test";
import { SharedSlots, slotView } from "../../../src/archive/engine/index.ts";

describe("SharedSlots", () => {
  test("hands out each slot once, and a caller waits for a slot until one is released", async () => {
    const slots = new SharedSlots(2, 16);
    const [a, b] = [await slots.acquire(), await slots.acquire()];
    expect(new Set([a, b]).size).toBe(2);
    let third: number | undefined;
    const waiting = slots.acquire().then((slot) => (third = slot));
    await Promise.resolve();
    expect(third).toBeUndefined();
    slots.release(b);
    expect(await waiting).toBe(b);
  });

  test("first come, first served: a released slot goes to the caller waiting longest, never to a later one", async () => {
    const slots = new SharedSlots(1, 8);
    const held = await slots.acquire();
    const first = slots.acquire().then(() => "first");
    slots.release(held);
    // Asked for after the release, before the first caller has run again: it must not take the slot.
    const later = slots.acquire().then(() => "later");
    expect(await Promise.race([first, later])).toBe("first");
  });

  test("views are the slot's own bytes in the one shared buffer, seen alike through slotView", async () => {
    const slots = new SharedSlots(3, 8);
    const slot = await slots.acquire();
    slots.view(slot, 4).set([1, 2, 3, 4]);
    expect(slots.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect([...slotView(slots.buffer, 8, slot, 5)]).toEqual([1, 2, 3, 4, 0]);
    expect(new Uint8Array(slots.buffer).filter((byte) => byte !== 0)).toHaveLength(4);
  });

  test("a slot number or length out of range is refused, not read from another slot or past the end", () => {
    const buffer = new SharedArrayBuffer(32);
    for (const [slot, length] of [[4, 1], [-1, 1], [1.5, 1], [0, 9], [0, -1]] as const) {
      expect(() => slotView(buffer, 8, slot, length)).toThrow("No slot");
    }
  });

  test("once failed, waiting and later callers get the failure instead of waiting forever", async () => {
    const slots = new SharedSlots(1, 8);
    await slots.acquire();
    const waiting = slots.acquire().catch((error: Error) => error.message);
    slots.fail(new Error("gone"));
    expect(await waiting).toBe("gone");
    expect(await slots.acquire().catch((error: Error) => error.message)).toBe("gone");
  });
});
