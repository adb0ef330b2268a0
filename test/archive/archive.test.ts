import { describe, test } from "bun:test";
import { archiveSuite } from "./archive-suite.ts";

describe("archive core (Bun)", () => archiveSuite(test));
