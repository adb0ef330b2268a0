// The bench's data shapes by name (`--shapes=a,b`), in the order a full run measures them.
import { blobsShape } from "./blobs.ts";
import { defaultShape } from "./default.ts";
import { manyTablesShape } from "./many-tables.ts";
import { proseShape } from "./prose.ts";
import { smallFilesShape } from "./small-files.ts";
import type { Shape } from "./common.ts";

export { ensureShape, type Shape, type ShapeSizes } from "./common.ts";

export const SHAPES: Shape[] = [defaultShape, proseShape, smallFilesShape, blobsShape, manyTablesShape];

/** The shapes `--shapes` names (all of them when it is absent), or an error naming the unknown ones. */
export function selectShapes(list: string | undefined): Shape[] {
  if (!list) return SHAPES;
  const names = list.split(",").map((n) => n.trim()).filter(Boolean);
  const unknown = names.filter((n) => !SHAPES.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown shape(s) ${unknown.join(", ")}; known: ${SHAPES.map((s) => s.name).join(", ")}`);
  return SHAPES.filter((s) => names.includes(s.name));
}
