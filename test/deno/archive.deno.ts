/// <reference lib="deno.ns" />
// `npm run test:deno`: the archive core's suite under Deno.
import { archiveSuite } from "../archive/archive-suite.ts";

archiveSuite((name, fn) => Deno.test(`archive core (Deno) > ${name}`, fn));
