import { createHash, randomBytes, randomUUID } from "node:crypto";
import { open, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import anyTest, { type TestFn } from "ava";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { ArtifactService } from "@flip/gen/flip/link/v1/link_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { grantArtifactAccess } from "@flip/hub/artifacts/access.js";
import { Artifact } from "@flip/hub/artifacts/entities.js";
import { AuditEntry } from "@flip/hub/audit/entities.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { createArtifactClient, type ArtifactClient } from "@flip/trust-gateway/artifacts/client.js";
import { downloadArtifact } from "@flip/trust-gateway/artifacts/download.js";
import { ArtifactAuthError, ArtifactRejectedError } from "@flip/trust-gateway/artifacts/errors.js";
import type { RetryPolicy } from "@flip/trust-gateway/artifacts/retry.js";
import { uploadArtifact } from "@flip/trust-gateway/artifacts/upload.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { connectErrorOf } from "@flip/shared/testing/connect-error-of.js";
import { BOOTSTRAP_TOKEN, startTestHub, type TestHub } from "../support/test-hub.js";

const MiB = 1024 * 1024;
const execFileAsync = promisify(execFile);
const FAST_RETRY: RetryPolicy = { maxAttempts: 5, initialDelayMs: 50, maxDelayMs: 500 };

interface Ctx {
  hub: TestHub;
  proxy: TcpProxy;
  dir: string;
  alpha: { id: string; apiKey: string };
  beta: { id: string; apiKey: string };
  /** A 20 MiB file and its artifact id once test 1 uploaded it. */
  file20: { path: string; bytes: Buffer; artifactId?: string };
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const hub = await startTestHub();
  const { hostname, port } = new URL(hub.hub.url);
  const proxy = await startTcpProxy({ host: hostname, port: Number(port) });
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-artifact-it-"));
  const bytes = randomBytes(20 * MiB);
  const file = path.join(dir, "weights-20m.safetensors");
  await writeFile(file, bytes);
  t.context = { hub, proxy, dir, alpha: await hub.registerTrust("alpha"), beta: await hub.registerTrust("beta"), file20: { path: file, bytes } };
});

test.after.always(async (t) => {
  await t.context.proxy?.close();
  await t.context.hub?.close();
  if (t.context.dir) await rm(t.context.dir, { recursive: true, force: true });
});

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * A client that records the stored offset of every GetUploadStatus answer. `beforeStatus` runs before
 * each status call is passed on, with the artifact it asks about.
 */
function recordingStatus(client: ArtifactClient, beforeStatus: (artifactId: string) => Promise<void> = async () => undefined): { client: ArtifactClient; offsets: number[] } {
  const offsets: number[] = [];
  return {
    offsets,
    client: {
      ...client,
      getUploadStatus: async (req, options) => {
        await beforeStatus(req.artifactId);
        const res = await client.getUploadStatus(req, options);
        offsets.push(Number(res.storedBytes));
        return res;
      },
    },
  };
}

/** A client that records the offset of every Download it starts. */
function recordingDownloads(client: ArtifactClient): { client: ArtifactClient; offsets: number[] } {
  const offsets: number[] = [];
  return {
    offsets,
    client: {
      ...client,
      download: (req, options) => {
        offsets.push(Number(req.offset ?? 0));
        return client.download(req, options);
      },
    },
  };
}


test.serial("a 20 MiB artifact uploads and downloads over HTTP/2 with a real trust key, checksum verified", async (t) => {
  const { hub, alpha, file20, dir } = t.context;
  const client = createArtifactClient({ baseUrl: hub.hub.url, apiKey: alpha.apiKey });
  const up = await uploadArtifact(client, { purpose: "model-update", source: file20.path }, { retry: FAST_RETRY });
  t.is(up.sizeBytes, 20 * MiB);
  t.is(up.sha256, sha(file20.bytes));
  file20.artifactId = up.artifactId;

  const dest = path.join(dir, "round-trip.bin");
  const down = await downloadArtifact(client, up.artifactId, dest, { retry: FAST_RETRY });
  t.is(down.sha256, up.sha256);
  t.true((await readFile(dest)).equals(file20.bytes));
  await t.throwsAsync(() => stat(`${dest}.part`), { code: "ENOENT" }, "the part file was renamed into place");

  const audits = await hub.hub.db.em().count(AuditEntry, { action: "artifact.uploaded", target: `artifact:${up.artifactId}` });
  t.is(audits, 1);
  // Uploading the same file again under the same id sends `begin` and `finish` alone and changes nothing.
  t.deepEqual(await uploadArtifact(client, { artifactId: up.artifactId, purpose: "model-update", source: file20.path }), up);
});

test.serial("an upload cut mid-stream resumes from the hub's stored offset instead of starting over", async (t) => {
  const { hub, proxy, alpha, file20 } = t.context;
  let cutDone = false;
  // The client retries within milliseconds; the hub records the offset once it has noticed the broken
  // stream and finished its writes. Resuming before that would (correctly) start from an older offset.
  const rec = recordingStatus(createArtifactClient({ baseUrl: proxy.url, apiKey: alpha.apiKey }), async (artifactId) => {
    if (!cutDone) return;
    await eventually(() => hub.hub.db.em().findOne(Artifact, { id: artifactId }), (row) => (row?.storedBytes ?? 0) > 0, {
      timeoutMs: 15_000,
      everyMs: 20,
      what: `an offset recorded for ${artifactId} after the cut`,
    });
  });
  const client = rec.client;
  const size = file20.bytes.length;
  let upAtCut = 0;
  const cut = proxy.cutAfter(8 * MiB, "up").then(() => {
    upAtCut = proxy.bytes("up");
    cutDone = true;
  });
  const up = await uploadArtifact(client, { purpose: "result", source: file20.path }, { retry: FAST_RETRY });
  await cut;
  t.is(up.sha256, sha(file20.bytes));
  // The status before the first attempt was NOT_FOUND (a new artifact); the one after the break says where to resume.
  t.is(rec.offsets.length, 1);
  const stored = rec.offsets[0]!;
  // 8 MiB of the stream got through, framing included: every whole 1 MiB chunk in it is kept, so the cut
  // loses at most the chunk in flight.
  t.true(stored >= 7 * MiB && stored <= 8 * MiB, `stored ${stored} bytes before the cut`);
  const sentAfter = proxy.bytes("up") - upAtCut;
  // Framing (HTTP/2 frames, gRPC prefixes, headers) adds well under 2%.
  t.true(sentAfter >= size - stored && sentAfter < (size - stored) * 1.02 + 64 * 1024, `sent ${sentAfter} after the cut for ${size - stored} missing bytes`);
});

test.serial("a download cut mid-stream resumes from the partial file", async (t) => {
  const { proxy, alpha, file20, dir } = t.context;
  const rec = recordingDownloads(createArtifactClient({ baseUrl: proxy.url, apiKey: alpha.apiKey }));
  const client = rec.client;
  const dest = path.join(dir, "resumed-download.bin");
  let downAtCut = 0;
  const cut = proxy.cutAfter(6 * MiB, "down").then(() => (downAtCut = proxy.bytes("down")));
  const down = await downloadArtifact(client, file20.artifactId!, dest, { retry: FAST_RETRY });
  await cut;
  t.true((await readFile(dest)).equals(file20.bytes));
  t.is(down.sha256, sha(file20.bytes));
  t.is(rec.offsets.length, 2);
  const resumedAt = rec.offsets[1]!;
  t.true(resumedAt > 2 * MiB && resumedAt <= 6 * MiB, `resumed at ${resumedAt}`);
  const size = file20.bytes.length;
  const receivedAfter = proxy.bytes("down") - downAtCut;
  t.true(receivedAfter < (size - resumedAt) * 1.02 + 64 * 1024, `received ${receivedAfter} after the cut for ${size - resumedAt} missing bytes`);
});

test.serial("a stale partial download of other bytes is dropped and the download starts over", async (t) => {
  const { hub, alpha, file20, dir } = t.context;
  const client = createArtifactClient({ baseUrl: hub.hub.url, apiKey: alpha.apiKey });
  const wrongPrefix = path.join(dir, "wrong-prefix.bin");
  await writeFile(`${wrongPrefix}.part`, randomBytes(MiB));
  t.is((await downloadArtifact(client, file20.artifactId!, wrongPrefix)).sha256, sha(file20.bytes));
  t.true((await readFile(wrongPrefix)).equals(file20.bytes));

  const tooLong = path.join(dir, "too-long.bin");
  await writeFile(`${tooLong}.part`, Buffer.alloc(file20.bytes.length + 1));
  t.is((await downloadArtifact(client, file20.artifactId!, tooLong)).sha256, sha(file20.bytes));
});

test.serial("a wrong or missing key is UNAUTHENTICATED and a disabled trust is PERMISSION_DENIED", async (t) => {
  const { hub, file20 } = t.context;
  const wrongKey = `flip_trust_0123456789abcdef_${"A".repeat(43)}`;
  const wrong = createArtifactClient({ baseUrl: hub.hub.url, apiKey: wrongKey });
  const err = await t.throwsAsync(() => uploadArtifact(wrong, { purpose: "result", source: file20.path }), { instanceOf: ArtifactAuthError });
  t.is(err.code, Code.Unauthenticated);

  const anonymous = createClient(ArtifactService, createGrpcTransport({ baseUrl: hub.hub.url }));
  t.is((await connectErrorOf(anonymous.getUploadStatus({ artifactId: randomUUID() }))).code, Code.Unauthenticated);

  const gamma = await hub.registerTrust("gamma");
  await hub.client(TrustService, BOOTSTRAP_TOKEN).disableTrust({ trust: gamma.id, reason: "test" });
  const disabled = createArtifactClient({ baseUrl: hub.hub.url, apiKey: gamma.apiKey });
  const denied = await t.throwsAsync(() => downloadArtifact(disabled, file20.artifactId!, path.join(t.context.dir, "never.bin")), { instanceOf: ArtifactAuthError });
  t.is(denied.code, Code.PermissionDenied);
});

test.serial("another trust cannot see an artifact until the hub grants it access", async (t) => {
  const { hub, beta, file20, dir } = t.context;
  const client = createArtifactClient({ baseUrl: hub.hub.url, apiKey: beta.apiKey });
  const dest = path.join(dir, "beta.bin");
  const err = await t.throwsAsync(() => downloadArtifact(client, file20.artifactId!, dest), { instanceOf: ArtifactRejectedError });
  t.is(err.code, Code.NotFound);
  t.is((await connectErrorOf(client.getUploadStatus({ artifactId: file20.artifactId! }))).code, Code.NotFound);

  await grantArtifactAccess(hub.hub.db.em(), { artifactId: file20.artifactId!, trustId: beta.id, actor: "system" });
  t.is((await downloadArtifact(client, file20.artifactId!, dest)).sha256, sha(file20.bytes));
});

/** A generic client of the hub's ArtifactService over `transport`, with alpha's key. */
function genericClient(transport: (opts: { baseUrl: string; interceptors: ReturnType<typeof bearerAuth>[] }) => Transport, baseUrl: string, apiKey: string) {
  return createClient(ArtifactService, transport({ baseUrl, interceptors: [bearerAuth(apiKey)] }));
}

/** An Upload stream's messages: begin (naming `beginSha`, "" for none), 1 MiB chunks of `data`, then finish when `finishSha` is given. */
async function* uploadMessages(artifactId: string, data: Buffer, beginSha: string, finishSha?: string) {
  yield { part: { case: "begin" as const, value: { artifactId, sizeBytes: BigInt(data.length), sha256: beginSha, purpose: "result" } } };
  for (let at = 0; at < data.length; at += MiB) yield { part: { case: "chunk" as const, value: { offset: BigInt(at), data: data.subarray(at, at + MiB) } } };
  if (finishSha !== undefined) yield { part: { case: "finish" as const, value: { sha256: finishSha } } };
}

test.serial("bytes that do not match the declared checksum are DATA_LOSS, and offsets past the end are OUT_OF_RANGE", async (t) => {
  const { hub, alpha, file20 } = t.context;
  // A plain gRPC client (connect-node's): the hub serves it on the direct path, like the gateway's.
  const raw = genericClient(createGrpcTransport, hub.hub.url, alpha.apiKey);
  const data = randomBytes(3 * MiB);
  const artifactId = randomUUID();
  const lost = await connectErrorOf(raw.upload(uploadMessages(artifactId, data, sha(Buffer.from("not these bytes")))));
  t.is(lost.code, Code.DataLoss);
  t.regex(lost.rawMessage, /start again from offset 0/);
  t.is((await connectErrorOf(raw.getUploadStatus({ artifactId }))).code, Code.NotFound, "the discarded upload is gone");

  const past = await connectErrorOf((async () => {
    for await (const _ of raw.download({ artifactId: file20.artifactId!, offset: BigInt(file20.bytes.length + 1) }));
  })());
  t.is(past.code, Code.OutOfRange);
});

test.serial("an upload may send its checksum in finish, after the last chunk; a wrong one there is DATA_LOSS", async (t) => {
  const { hub, alpha } = t.context;
  const raw = genericClient(createGrpcTransport, hub.hub.url, alpha.apiKey);
  const data = randomBytes(2 * MiB + 5);
  const wrong = await connectErrorOf(raw.upload(uploadMessages(randomUUID(), data, "", sha(Buffer.from("other")))));
  t.is(wrong.code, Code.DataLoss);
  const artifactId = randomUUID();
  t.like(await raw.upload(uploadMessages(artifactId, data, "", sha(data))), { artifactId, storedBytes: BigInt(data.length), complete: true });
  const row = await hub.hub.db.em().findOneOrFail(Artifact, { id: artifactId });
  t.is(row.sha256, sha(data));
});

test.serial("uploads and downloads over the Connect protocol reach the same artifacts", async (t) => {
  const { hub, alpha, file20, dir } = t.context;
  const connect = genericClient((o) => createConnectTransport({ ...o, httpVersion: "2" }), hub.hub.url, alpha.apiKey);
  const data = randomBytes(3 * MiB + 1);
  const artifactId = randomUUID();
  t.like(await connect.upload(uploadMessages(artifactId, data, "", sha(data))), { complete: true });
  // Uploaded over Connect, downloaded by the gateway's client (direct path), and the other way round.
  const dest = path.join(dir, "uploaded-over-connect.bin");
  await downloadArtifact(createArtifactClient({ baseUrl: hub.hub.url, apiKey: alpha.apiKey }), artifactId, dest);
  t.true((await readFile(dest)).equals(data));
  const parts: Uint8Array[] = [];
  let checksum = "";
  for await (const m of connect.download({ artifactId: file20.artifactId!, offset: 0n })) {
    parts.push(m.data);
    if (m.sha256 !== "") checksum = m.sha256;
  }
  t.true(Buffer.concat(parts).equals(file20.bytes));
  t.is(checksum, sha(file20.bytes));
});

test.serial("an aborted upload stops at once and resumes later from what the hub stored", async (t) => {
  const { hub, proxy, alpha, dir } = t.context;
  // Large enough that the abort lands mid-stream on a fast machine.
  const file = await writeMiB(path.join(dir, "aborted.bin"), 64);
  const rec = recordingStatus(createArtifactClient({ baseUrl: proxy.url, apiKey: alpha.apiKey }));
  const artifactId = randomUUID();
  const abort = new AbortController();
  const started = proxy.bytes("up");
  const upload = uploadArtifact(rec.client, { artifactId, purpose: "result", source: file }, { retry: FAST_RETRY, signal: abort.signal });
  await eventually(() => proxy.bytes("up") - started, (n) => n > 4 * MiB, { timeoutMs: 15_000, everyMs: 5, what: "4 MiB of the upload sent" });
  abort.abort();
  const err = await t.throwsAsync(upload);
  t.is(ConnectError.from(err).code, Code.Canceled);
  await eventually(() => hub.hub.db.em().findOne(Artifact, { id: artifactId }), (row) => (row?.storedBytes ?? 0) > 0, {
    timeoutMs: 15_000,
    everyMs: 20,
    what: "the aborted upload's offset recorded",
  });
  const up = await uploadArtifact(rec.client, { artifactId, purpose: "result", source: file }, { retry: FAST_RETRY });
  t.is(up.sha256, sha(await readFile(file)));
  t.true(rec.offsets.at(-1)! > 0, "the second upload resumed");
});

test.serial("the hub's memory stays flat while a 200 MiB artifact uploads and downloads", async (t) => {
  const { hub, alpha, dir } = t.context;
  const file = await writeMiB(path.join(dir, "big.bin"), 200);
  // Warm up first: the first transfers grow the heap and the allocator's pools to their steady state
  // (V8 collects external buffers only after some tens of MiB of them), which is no growth with size.
  const warm = JSON.parse(await transferInChild(hub.hub.url, alpha.apiKey, ["upload", await writeMiB(path.join(dir, "warm.bin"), 48)])) as { artifactId: string };
  await transferInChild(hub.hub.url, alpha.apiKey, ["download", path.join(dir, "warm-copy.bin"), warm.artifactId]);

  // The gateway runs in a child process, so this process's RSS is the hub's alone.
  const upload = await measureRss(() => transferInChild(hub.hub.url, alpha.apiKey, ["upload", file]));
  const { artifactId, sizeBytes } = JSON.parse(upload.result) as { artifactId: string; sizeBytes: number };
  t.is(sizeBytes, 200 * MiB);
  const copy = path.join(dir, "big-copy.bin");
  const download = await measureRss(() => transferInChild(hub.hub.url, alpha.apiKey, ["download", copy, artifactId]));
  t.is((await stat(copy)).size, 200 * MiB);
  t.log(`hub RSS growth: upload ${(upload.growth / MiB).toFixed(1)} MiB, download ${(download.growth / MiB).toFixed(1)} MiB`);
  // V8 collects garbage buffers only once some 64 MiB of them piled up since the last collection, so a
  // bounded hub peaks up to about that much above its baseline; holding the artifact would add 200 MiB.
  const limit = 96 * MiB;
  t.true(upload.growth < limit, `RSS grew by ${(upload.growth / MiB).toFixed(1)} MiB during the upload`);
  t.true(download.growth < limit, `RSS grew by ${(download.growth / MiB).toFixed(1)} MiB during the download`);
});

/** Writes `mib` MiB of random-looking bytes (one random MiB repeated) and returns the path. */
async function writeMiB(file: string, mib: number): Promise<string> {
  const block = randomBytes(MiB);
  const fh = await open(file, "w");
  try {
    for (let i = 0; i < mib; i++) await fh.write(block);
  } finally {
    await fh.close();
  }
  return file;
}

/** Peak RSS growth of this process while `work` runs. */
async function measureRss<T>(work: () => Promise<T>): Promise<{ result: T; growth: number }> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const result = await work();
    return { result, growth: peak - before };
  } finally {
    clearInterval(sampler);
  }
}

async function transferInChild(hubUrl: string, apiKey: string, args: string[]): Promise<string> {
  const script = path.join(import.meta.dirname, "transfer-child.ts");
  const [mode, ...rest] = args;
  const { stdout } = await execFileAsync(process.execPath, ["--import", "tsx", script, mode!, hubUrl, ...rest], {
    env: { ...process.env, FLIP_TRUST_KEY: apiKey },
  });
  return stdout.trim();
}
