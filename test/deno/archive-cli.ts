// Writes or verifies an archive with the archive core, for the cross-runtime tests (run under Deno or Bun):
//   archive-cli.ts write DIR OUT.zip      → prints {"sha256", "size", "manifest"}
//   archive-cli.ts verify IN.zip DEST     → extracts, prints {"entries", "bytes", "manifest"}
import { readArchive, writeArchive } from "../../src/archive/index.ts";
import { fileReader, fileWriter, sinkToDir, sourcesFromDir } from "../support/archive-files.ts";

const [command, from, to] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
const runtime = (globalThis as { Deno?: unknown }).Deno ? "deno" : "bun";
if (command === "write") {
  const written = await writeArchive(await sourcesFromDir(from!), await fileWriter(to!), { producer: `cross-runtime-${runtime}` });
  console.log(JSON.stringify(written));
} else if (command === "verify") {
  const source = await fileReader(from!);
  try {
    const report = await readArchive(source, { sink: sinkToDir(to!) });
    // The manifest's entries are made on demand (`ListedManifest`): printed as the manifest they come from.
    const { manifest, ...rest } = report;
    console.log(JSON.stringify({ ...rest, ...(manifest ? { manifest: { ...manifest, entries: manifest.entries() } } : {}) }));
  } finally {
    await source.close();
  }
} else {
  console.error("usage: archive-cli.ts write DIR OUT.zip | verify IN.zip DEST");
}
