/**
 * A container health check: exits 0 when the service is serving, 1 (with one line saying why) when not.
 *   probe.ts grpc <host:port> [--tls]       grpc.health.v1 Check on the service's own port: SERVING or not
 *   probe.ts file <path> [--max-age-s N]    a health file (health-file.ts) saying serving, written within N s (30)
 * A listen address of 0.0.0.0 or :: is probed on loopback. With --tls the certificate is not checked: the
 * probe asks its own process, whose certificate names the host clients use.
 */
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@flip/gen/health/v1/health_pb.js";
import { parseHostPort } from "../config/settings.js";
import { readHealthFile } from "./health-file.js";

const USAGE = "usage: probe.ts grpc <host:port> [--tls] | probe.ts file <path> [--max-age-s N]";

/** The URL to probe a service listening on `address` from inside its own container. */
export function probeUrl(address: string, tls: boolean): string {
  const parsed = parseHostPort(address);
  if (!parsed) throw new Error(`not a host:port listen address: ${JSON.stringify(address)}`);
  const host = parsed.host === "0.0.0.0" ? "127.0.0.1" : parsed.host === "::" ? "[::1]" : parsed.host.includes(":") ? `[${parsed.host}]` : parsed.host;
  return `${tls ? "https" : "http"}://${host}:${parsed.port}`;
}

async function probeGrpc(address: string, tls: boolean): Promise<{ serving: boolean; why: string }> {
  const baseUrl = probeUrl(address, tls);
  const client = createClient(Health, createGrpcTransport({ baseUrl, nodeOptions: tls ? { rejectUnauthorized: false } : {} }));
  try {
    const { status } = await client.check({ service: "" }, { timeoutMs: 5_000 });
    return { serving: status === Status.SERVING, why: `${baseUrl} is ${Status[status]}` };
  } catch (e) {
    return { serving: false, why: `${baseUrl} did not answer: ${e instanceof Error ? e.message : String(e)}` };
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { tls: { type: "boolean", default: false }, "max-age-s": { type: "string", default: "30" } } });
  const [kind, target] = positionals;
  const maxAgeS = Number(values["max-age-s"]);
  if (!target || positionals.length !== 2 || !(maxAgeS > 0) || (kind !== "grpc" && kind !== "file")) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const result = kind === "grpc" ? await probeGrpc(target, values.tls) : readHealthFile(target, maxAgeS * 1000);
  (result.serving ? process.stdout : process.stderr).write(`${result.serving ? "healthy" : "unhealthy"}: ${result.why}\n`);
  return result.serving ? 0 : 1;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
