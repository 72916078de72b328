import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import * as path from "node:path";
import { createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { Health, HealthCheckResponse_ServingStatus } from "@flip/gen/health/v1/health_pb.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { freePort, startEmbeddedPostgres } from "@flip/shared/postgres/embedded.js";
import { SERVICE_NODE_FLAGS } from "@flip/shared/process/service-node-flags.js";

const root = path.resolve(import.meta.dirname, "../../..");

/** A hub process on its own database, as benchmarks use it. */
export interface BenchHub {
  url: string;
  pid: number;
  /** A gRPC transport that authenticates as the bootstrap Admin. */
  admin: Transport;
  /** The hub database's connection URL, for reading timings back. */
  databaseUrl: string;
  /** The hub's artifact directory. */
  artifactDir: string;
  close(): Promise<void>;
}

/** The hub process's resident memory now, in MB. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The smallest RSS over a few samples: garbage not yet collected inflates single readings. */
export async function settledRssMb(pid: number, ms = 3_000): Promise<number> {
  let min = Infinity;
  for (let waited = 0; waited < ms; waited += 250) {
    min = Math.min(min, rssMb(pid));
    await new Promise((r) => setTimeout(r, 250));
  }
  return min;
}

/**
 * Starts PostgreSQL (DATABASE_URL's server, or an embedded one), a fresh database on it, and a hub
 * **process** serving on a free loopback port, and waits until it is healthy. The hub's logs go to
 * stderr, so a benchmark's stdout stays pure JSON. It runs with the service processes' V8 flags. `FLIP_BENCH_HUB_NODE_OPTIONS` (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`) is passed to the hub's Node.
 */
export async function startBenchHub(opts: { name: string; log: Logger; env?: Record<string, string> }): Promise<BenchHub> {
  const stops: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  try {
    const server = await databaseServer(opts.log);
    stops.push(server.stop);
    const dbName = `bench_${opts.name}_${randomBytes(4).toString("hex")}`;
    await adminQuery(server.adminUrl, `create database "${dbName}"`);
    stops.push(() => adminQuery(server.adminUrl, `drop database if exists "${dbName}" with (force)`));
    const dbUrl = new URL(server.adminUrl);
    dbUrl.pathname = `/${dbName}`;

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const adminToken = randomBytes(24).toString("base64url");
    const dataDir = path.join(root, ".tmp", `bench-hub-${opts.name}-${process.pid}`);
    stops.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const nodeArgs = (process.env.FLIP_BENCH_HUB_NODE_OPTIONS ?? "").split(" ").filter(Boolean);
    const hub = spawn(process.execPath, [...SERVICE_NODE_FLAGS, ...nodeArgs, "--import", "tsx", path.join(root, "services/hub/src/main.ts")], {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: dbUrl.toString(),
        FLIP_HUB_ADDR: `127.0.0.1:${port}`,
        FLIP_ADMIN_TOKEN: adminToken,
        FLIP_HUB_DATA_DIR: dataDir,
        // Per-task info lines would measure pino, not the hub.
        FLIP_LOG_LEVEL: "warn",
        OTEL_SDK_DISABLED: "true",
        ...opts.env,
      },
      stdio: ["ignore", process.stderr, process.stderr],
    });
    const exited = new Promise<number | null>((r) => hub.once("exit", (code) => r(code)));
    stops.push(async () => {
      hub.kill("SIGTERM");
      await exited;
    });
    const admin = createGrpcTransport({ baseUrl: url, interceptors: [bearerAuth(adminToken)] });
    const health = createClient(Health, admin);
    for (let i = 0; ; i++) {
      const ok = await health.check({}).then((r) => r.status === HealthCheckResponse_ServingStatus.SERVING, () => false);
      if (ok) break;
      if (i > 600) throw new Error("the hub did not start within 60 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    return { url, pid: hub.pid!, admin, databaseUrl: dbUrl.toString(), artifactDir: path.join(dataDir, "artifacts"), close };
  } catch (e) {
    await close();
    throw e;
  }
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function databaseServer(log: Logger): Promise<{ adminUrl: string; stop(): Promise<void> }> {
  const external = process.env.DATABASE_URL;
  if (external) return { adminUrl: external, stop: async () => {} };
  const dataDir = path.join(root, ".tmp", `bench-pg-${process.pid}`);
  const server = await startEmbeddedPostgres({ dataDir, port: 0, databases: [], log });
  return {
    adminUrl: server.urlFor("postgres"),
    async stop() {
      await server.remove();
    },
  };
}
