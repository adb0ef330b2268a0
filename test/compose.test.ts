import { expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { ENV_NAMES } from "../src/config.ts";

/** compose.yaml is for users (no Docker engine runs here): held against the configuration the server reads. */
const ROOT = resolve(import.meta.dir, "..");
type Service = { environment?: Record<string, string>; depends_on?: Record<string, { condition: string }>; healthcheck?: { test: string[] }; command?: string; entrypoint?: string; build?: string };
const compose = Bun.YAML.parse(await readFile(resolve(ROOT, "compose.yaml"), "utf8")) as { services: Record<string, Service> };

test("every environment variable given to backstream is one the server reads", () => {
  const environment = compose.services.backstream!.environment!;
  const names = Object.keys(environment);
  expect(names.length).toBeGreaterThan(5);
  for (const name of names) expect({ name, known: (ENV_NAMES as readonly string[]).includes(name) }).toEqual({ name, known: true });
});

test("S3 is switched on through the environment and points at the MinIO service's bucket", () => {
  const env = compose.services.backstream!.environment!;
  expect(env.PB_BACKUPS_S3_ENDPOINT).toBe("http://minio:9000");
  expect(env.PB_BACKUPS_S3_FORCE_PATH_STYLE).toBe("true");
  const bucket = env.PB_BACKUPS_S3_BUCKET!;
  expect(compose.services["create-bucket"]!.entrypoint).toContain(`local/${bucket}`);
  expect(env.PB_BACKUPS_S3_ACCESS_KEY).toBe(compose.services.minio!.environment!.MINIO_ROOT_USER);
  expect(env.PB_BACKUPS_S3_SECRET).toBe(compose.services.minio!.environment!.MINIO_ROOT_PASSWORD);
});

test("services wait for health: MinIO healthy, bucket created, then backstream; each has a health check", () => {
  expect(compose.services.minio!.healthcheck!.test.join(" ")).toContain("mc ready local");
  expect(compose.services["create-bucket"]!.depends_on!.minio!.condition).toBe("service_healthy");
  expect(compose.services.backstream!.depends_on!["create-bucket"]!.condition).toBe("service_completed_successfully");
  expect(compose.services.backstream!.healthcheck!.test.join(" ")).toContain("/api/health");
});

test("the image serves on all interfaces of the container, with the data directory as a volume", async () => {
  const dockerfile = await readFile(resolve(ROOT, "Dockerfile"), "utf8");
  expect(dockerfile).toContain("npm ci");
  expect(dockerfile).toContain("--http=0.0.0.0:8090");
  expect(dockerfile).toContain("--dir=/app/pb_data");
});
