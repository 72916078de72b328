/**
 * `npm run bench -- artifacts [--size-mib N] [--json]`
 *
 * Starts PostgreSQL and a hub process, registers a trust, and moves one file of N MiB (default 1,024,
 * random bytes) three ways in this process, side by side:
 * - raw TCP: the file's bytes read and written to a loopback TCP socket, received and counted here too
 *   (before and after the artifact transfers; their mean is the reference);
 * - upload: `uploadArtifact` (the gateway's client) to the hub's ArtifactService, checksum verified by
 *   the hub;
 * - download: `downloadArtifact` of the same artifact to a new file, checksum verified by the client.
 * - raw TCP into a file: the same, with the receiver writing the bytes to a new file (what storing them
 *   costs on this machine, reported beside the plain figure).
 * Each ratio is the artifact path's MiB/s over raw TCP's.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createArtifactClient } from "@flip/trust-gateway/artifacts/client.js";
import { downloadArtifact } from "@flip/trust-gateway/artifacts/download.js";
import { uploadArtifact } from "@flip/trust-gateway/artifacts/upload.js";
import { rssMb, startBenchHub } from "./bench-hub.js";

const root = path.resolve(import.meta.dirname, "../../..");
const MiB = 1024 * 1024;
const progress = (msg: string) => process.stderr.write(`[bench artifacts] ${msg}\n`);

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { "size-mib": { type: "string", default: "1024" }, json: { type: "boolean", default: false } } });
  const sizeMib = Number(values["size-mib"]);
  if (!Number.isInteger(sizeMib) || sizeMib < 1 || sizeMib > 16_384) {
    process.stderr.write("usage: npm run bench -- artifacts [--size-mib N (1-16384)] [--json]\n");
    return 2;
  }
  const log = createLogger({ service: "bench", level: process.env.FLIP_LOG_LEVEL ?? "warn", destination: process.stderr });
  const dir = path.join(root, ".tmp", `bench-artifacts-${process.pid}`);
  await mkdir(dir, { recursive: true });
  const hub = await startBenchHub({ name: "artifacts", log });
  try {
    const { apiKey } = await createClient(TrustService, hub.admin).registerTrust({ name: "Bench trust", code: "bench" });
    const client = createArtifactClient({ baseUrl: hub.url, apiKey });

    progress(`writing a ${sizeMib} MiB file of random bytes`);
    const source = path.join(dir, "source.bin");
    await writeRandomFile(source, sizeMib * MiB);
    // Warm-up (not measured): compiled code, the HTTP/2 session, the page cache of the source.
    const warm = path.join(dir, "warm.bin");
    await writeRandomFile(warm, Math.min(64, sizeMib) * MiB);
    const warmUp = await uploadArtifact(client, { purpose: "bench-warm-up", source: warm });
    await downloadArtifact(client, warmUp.artifactId, path.join(dir, "warm-down.bin"));
    await rawTcp(source);

    progress("raw TCP (1 of 2)");
    const raw1 = await rawTcp(source);
    progress("upload through the hub");
    let hubPeakMb = rssMb(hub.pid);
    const sampler = setInterval(() => (hubPeakMb = Math.max(hubPeakMb, rssMb(hub.pid))), 100);
    const uploadS = await timed(() => uploadArtifact(client, { artifactId: randomUUID(), purpose: "bench", source }));
    progress("download from the hub");
    const downloadS = await timed(async () => {
      const up = uploadS.value;
      return await downloadArtifact(client, up.artifactId, path.join(dir, "downloaded.bin"));
    });
    clearInterval(sampler);
    if (downloadS.value.sha256 !== uploadS.value.sha256) throw new Error("the downloaded artifact does not match the upload");
    progress("raw TCP (2 of 2)");
    const raw2 = await rawTcp(source);
    // The same bytes received into a new file: what any transfer that stores them pays on this machine
    // (on some VMs, writing fresh page cache costs more than moving the bytes).
    progress("raw TCP into a file");
    const rawToFile = await rawTcp(source, path.join(dir, "raw-received.bin"));

    const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
    const rawMibS = (sizeMib / raw1 + sizeMib / raw2) / 2;
    const uploadMibS = sizeMib / uploadS.seconds;
    const downloadMibS = sizeMib / downloadS.seconds;
    const result = {
      benchmark: "artifacts",
      size_mib: sizeMib,
      raw_tcp_mib_s: round(rawMibS),
      raw_tcp_runs_mib_s: [round(sizeMib / raw1), round(sizeMib / raw2)],
      upload_mib_s: round(uploadMibS),
      download_mib_s: round(downloadMibS),
      upload_ratio: round(uploadMibS / rawMibS, 3),
      download_ratio: round(downloadMibS / rawMibS, 3),
      raw_tcp_to_file_mib_s: round(sizeMib / rawToFile),
      upload_ratio_to_file: round(uploadMibS / (sizeMib / rawToFile), 3),
      download_ratio_to_file: round(downloadMibS / (sizeMib / rawToFile), 3),
      hub_rss_peak_mb: round(hubPeakMb),
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? "", memory_gb: round(os.totalmem() / 2 ** 30), node: process.version },
    };
    process.stdout.write(JSON.stringify(result, null, values.json ? undefined : 2) + "\n");
    return 0;
  } finally {
    await hub.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - started) / 1000, value };
}

async function writeRandomFile(file: string, size: number): Promise<void> {
  const fh = await open(file, "w");
  try {
    const block = randomBytes(16 * MiB);
    for (let at = 0; at < size; at += block.length) await fh.write(block, 0, Math.min(block.length, size - at));
  } finally {
    await fh.close();
  }
}

/**
 * Seconds to send the file's bytes over a loopback TCP connection to a receiver in this process, which
 * counts them, or (with `into`) writes them to a new file as an artifact transfer must.
 */
async function rawTcp(file: string, into?: string): Promise<number> {
  let received = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const server = net.createServer((s) => {
    s.on("data", (d: Buffer) => (received += d.length));
    if (into) s.pipe(createWriteStream(into)).on("finish", () => done());
    else s.on("end", () => done());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const started = performance.now();
    const socket = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    for await (const chunk of createReadStream(file, { highWaterMark: MiB })) {
      if (!socket.write(chunk as Buffer)) await new Promise((r) => socket.once("drain", r));
    }
    socket.end();
    await finished;
    return (performance.now() - started) / 1000;
  } finally {
    server.close();
    if (into) await rm(into, { force: true });
    if (received === 0) throw new Error("raw TCP received nothing");
  }
}
