import { createHash, randomBytes, randomUUID } from "node:crypto";
import { appendFile, mkdtemp, open, readdir, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import anyTest, { type TestFn } from "ava";
import { createNoopMeter } from "@opentelemetry/api";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { AuditEntry } from "../audit/entities.js";
import { openDatabase } from "../db/database.js";
import { AlreadyExistsError, FailedPreconditionError, InvalidInputError, NotFoundError } from "../domain/errors.js";
import { HubMetrics } from "../metrics/hub-metrics.js";
import { registerTrust } from "../trusts/registry.js";
import { findVisibleArtifact, grantArtifactAccess } from "./access.js";
import type { ArtifactDeps } from "./deps.js";
import { BackgroundSyncs, verifyUnsyncedArtifacts } from "./durability.js";
import { Artifact } from "./entities.js";
import { ArtifactChecksumError, ArtifactOffsetError, ArtifactTooLargeError, UploadSupersededError } from "./errors.js";
import { FsArtifactStore } from "./fs-store.js";
import { readArtifact, writeHubArtifact } from "./hub-artifacts.js";
import { receiveUpload, type UploadChunkInput, type UploadInput, type Uploader } from "./upload.js";
import { UploadLeases } from "./upload-leases.js";
import { getUploadStatus } from "./upload-status.js";
import { validateBegin, type UploadPlan } from "./validate.js";

interface Ctx {
  pg: TestDatabase;
  deps: ArtifactDeps;
  dir: string;
  a: Uploader;
  b: Uploader;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const pg = await createTestDatabase("artifacts");
  const log = createLogger({ service: "test", level: "silent" });
  const db = await openDatabase(pg.url, log, 4);
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-artifacts-"));
  const store = new FsArtifactStore(dir);
  await store.init();
  const deps: ArtifactDeps = {
    db,
    store,
    log,
    maxBytes: 4 * 1024 * 1024,
    leases: new UploadLeases(),
    checkpointBytes: 64 * 1024,
    syncs: new BackgroundSyncs(db, store, log),
    metrics: new HubMetrics(createNoopMeter()),
  };
  const trust = async (code: string): Promise<Uploader> => {
    const { trust } = await registerTrust(db.em(), "test", { name: `${code} hospital`, code, region: "test" });
    return { trustId: trust.id, trustCode: trust.code };
  };
  t.context = { pg, deps, dir, a: await trust("alpha"), b: await trust("beta") };
});

test.after.always(async (t) => {
  await t.context.deps?.syncs.idle();
  await t.context.deps?.db.close();
  await t.context.pg?.drop();
  if (t.context.dir) await rm(t.context.dir, { recursive: true, force: true });
});

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function planFor(bytes: Buffer, id: string = randomUUID(), declaredSha = sha(bytes)): UploadPlan {
  return validateBegin({ artifactId: id, sizeBytes: BigInt(bytes.length), sha256: declaredSha, purpose: "model-update", taskId: "" }, 4 * 1024 * 1024);
}

/** A plan whose begin names no checksum: the upload sends it in `finish`. */
function planWithoutSha(bytes: Buffer, id: string = randomUUID()): UploadPlan {
  return planFor(bytes, id, "");
}

/** The chunks of `data` from `from`, then a finish naming `finishSha`. */
async function* chunksThenFinish(data: Buffer, from: number, size: number, finishSha: string): AsyncGenerator<UploadInput> {
  yield* chunks(data, from, size);
  yield { sha256: finishSha };
}

/** The bytes of `data` from `from` in chunks of `size`; with `breakAt`, the stream fails once that offset is sent, as a dropped link. */
async function* chunks(data: Buffer, from: number, size: number, breakAt?: number): AsyncGenerator<UploadChunkInput> {
  for (let at = from; at < data.length; at += size) {
    if (breakAt !== undefined && at >= breakAt) throw new Error("connection reset");
    yield { offset: at, data: data.subarray(at, Math.min(at + size, data.length)) };
  }
}

async function readAll(deps: ArtifactDeps, id: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of (await readArtifact(deps, id)).chunks) parts.push(c);
  return Buffer.concat(parts);
}

test("an upload broken mid-stream keeps what arrived and resumes from the stored offset", async (t) => {
  const { deps, a } = t.context;
  const data = randomBytes(300_000);
  const plan = planFor(data);
  await t.throwsAsync(() => receiveUpload(deps, a, plan, chunks(data, 0, 50_000, 150_000)), { message: "connection reset" });
  const status = await getUploadStatus(deps.db.em(), a.trustId, plan.id);
  t.is(status.storedBytes, 150_000);
  t.false(status.complete);
  const done = await receiveUpload(deps, a, plan, chunks(data, status.storedBytes, 50_000));
  t.deepEqual(done, { artifactId: plan.id, storedBytes: data.length, complete: true });
  t.true((await readAll(deps, plan.id)).equals(data));
});

test("a chunk that overlaps stored bytes is accepted and the overlap skipped", async (t) => {
  const { deps, a } = t.context;
  const data = randomBytes(100_000);
  const plan = planFor(data);
  await t.throwsAsync(() => receiveUpload(deps, a, plan, chunks(data, 0, 30_000, 60_000)));
  t.is((await getUploadStatus(deps.db.em(), a.trustId, plan.id)).storedBytes, 60_000);
  const done = await receiveUpload(deps, a, plan, chunks(data, 45_000, 15_000));
  t.true(done.complete);
  t.true((await readAll(deps, plan.id)).equals(data));
});

test("a chunk past the stored offset is refused with the offset to resume from", async (t) => {
  const { deps, a } = t.context;
  const data = randomBytes(10_000);
  const plan = planFor(data);
  const err = await t.throwsAsync(() => receiveUpload(deps, a, plan, chunks(data, 4_000, 1_000)), { instanceOf: ArtifactOffsetError });
  t.is(err.expectedOffset, 0);
  t.regex(err.message, /expected 0/);
});

test("a checksum mismatch discards the upload so a retry starts from 0", async (t) => {
  const { deps, a, dir } = t.context;
  const data = randomBytes(70_000);
  const plan = planFor(data, randomUUID(), sha(Buffer.from("other bytes")));
  const err = await t.throwsAsync(() => receiveUpload(deps, a, plan, chunks(data, 0, 20_000)), { instanceOf: ArtifactChecksumError });
  t.is(err.actual, sha(data));
  await t.throwsAsync(() => getUploadStatus(deps.db.em(), a.trustId, plan.id), { instanceOf: NotFoundError });
  t.false((await readdir(dir)).some((f) => f.startsWith(plan.id)), "no part is left behind");
  const retry = await receiveUpload(deps, a, planFor(data, plan.id), chunks(data, 0, 20_000));
  t.true(retry.complete);
});

test("re-uploading a complete artifact with the same checksum is a no-op that reads no chunks", async (t) => {
  const { deps, a } = t.context;
  const data = randomBytes(5_000);
  const plan = planFor(data);
  await receiveUpload(deps, a, plan, chunks(data, 0, 5_000));
  async function* untouched(): AsyncGenerator<UploadChunkInput> {
    t.fail("no chunk should be read");
    yield { offset: 0, data: new Uint8Array() };
  }
  t.deepEqual(await receiveUpload(deps, a, plan, untouched()), { artifactId: plan.id, storedBytes: 5_000, complete: true });
  const audits = await deps.db.em().count(AuditEntry, { action: "artifact.uploaded", target: `artifact:${plan.id}` });
  t.is(audits, 1, "completion is audited once");
});

test("the same id with another size or checksum is refused; another trust cannot use the id at all", async (t) => {
  const { deps, a, b } = t.context;
  const data = randomBytes(1_000);
  const plan = planFor(data);
  await receiveUpload(deps, a, plan, chunks(data, 0, 1_000));
  const other = randomBytes(1_000);
  await t.throwsAsync(() => receiveUpload(deps, a, planFor(other, plan.id), chunks(other, 0, 1_000)), { instanceOf: FailedPreconditionError });
  await t.throwsAsync(() => receiveUpload(deps, b, plan, chunks(data, 0, 1_000)), { instanceOf: AlreadyExistsError });
  await t.throwsAsync(() => getUploadStatus(deps.db.em(), b.trustId, plan.id), { instanceOf: NotFoundError });
});

test("bytes past the declared size are refused, and sizes over the cap are refused up front", async (t) => {
  const { deps, a } = t.context;
  const data = randomBytes(1_000);
  const plan = planFor(data.subarray(0, 600));
  await t.throwsAsync(() => receiveUpload(deps, a, plan, chunks(data, 0, 500)), { instanceOf: InvalidInputError, message: /past the declared size of 600/ });
  t.throws(() => validateBegin({ artifactId: randomUUID(), sizeBytes: 5n * 1024n * 1024n, sha256: sha(data), purpose: "result", taskId: "" }, 4 * 1024 * 1024), {
    instanceOf: ArtifactTooLargeError,
  });
  t.throws(() => validateBegin({ artifactId: "not-a-uuid", sizeBytes: 1n, sha256: sha(data), purpose: "result", taskId: "" }, 100), { message: /begin.artifact_id/ });
  t.throws(() => validateBegin({ artifactId: randomUUID(), sizeBytes: 1n, sha256: "ABC", purpose: "result", taskId: "" }, 100), { message: /begin.sha256/ });
});

test("bytes written after the last recorded offset are dropped on resume", async (t) => {
  const { deps, a, dir } = t.context;
  const data = randomBytes(200_000);
  const plan = planFor(data);
  await t.throwsAsync(() => receiveUpload(deps, a, plan, chunks(data, 0, 40_000, 80_000)));
  await appendFile(path.join(dir, `${plan.id}.part`), randomBytes(12_345));
  const stored = (await getUploadStatus(deps.db.em(), a.trustId, plan.id)).storedBytes;
  t.is(stored, 80_000);
  t.true((await receiveUpload(deps, a, plan, chunks(data, stored, 40_000))).complete);
  t.true((await readAll(deps, plan.id)).equals(data));
});

test("a newer stream of the same artifact takes over a stalled one, which records its offset first", async (t) => {
  const { deps, a } = t.context;
  const data = randomBytes(100_000);
  const plan = planFor(data);
  let stall!: () => void;
  let firstChunkWritten!: () => void;
  const askedForMore = new Promise<void>((r) => (firstChunkWritten = r));
  async function* stalled(): AsyncGenerator<UploadChunkInput> {
    yield { offset: 0, data: data.subarray(0, 30_000) };
    // The receiver asks for the next chunk only after it appended the first one.
    firstChunkWritten();
    await new Promise<void>((r) => (stall = r));
  }
  const first = receiveUpload(deps, a, plan, stalled());
  await askedForMore;
  const second = receiveUpload(deps, a, plan, chunks(data, 30_000, 35_000));
  await t.throwsAsync(first, { instanceOf: UploadSupersededError });
  t.true((await second).complete);
  stall();
  t.true((await readAll(deps, plan.id)).equals(data));
});

test("another trust's begin with the same id does not interrupt the owner's running upload", async (t) => {
  const { deps, a, b } = t.context;
  const data = randomBytes(60_000);
  const plan = planFor(data);
  let resume!: () => void;
  const paused = new Promise<void>((r) => (resume = r));
  async function* pausing(): AsyncGenerator<UploadChunkInput> {
    yield { offset: 0, data: data.subarray(0, 20_000) };
    await paused;
    yield { offset: 20_000, data: data.subarray(20_000) };
  }
  const owner = receiveUpload(deps, a, plan, pausing());
  while ((await getUploadStatus(deps.db.em(), a.trustId, plan.id).catch(() => undefined)) === undefined) await new Promise((r) => setTimeout(r, 5));
  await t.throwsAsync(() => receiveUpload(deps, b, plan, chunks(data, 0, 60_000)), { instanceOf: AlreadyExistsError });
  resume();
  t.true((await owner).complete);
});

test("an empty artifact completes with begin alone", async (t) => {
  const { deps, a } = t.context;
  const plan = planFor(Buffer.alloc(0));
  t.deepEqual(await receiveUpload(deps, a, plan, chunks(Buffer.alloc(0), 0, 1)), { artifactId: plan.id, storedBytes: 0, complete: true });
});

test("an upload whose begin names no checksum completes on a finish that names the right one", async (t) => {
  const { deps, a } = t.context;
  const data = randomBytes(150_000);
  const plan = planWithoutSha(data);
  t.is(plan.sha256, null);
  // The stream ends after the last byte but before finish: nothing is complete yet, every byte is kept.
  t.deepEqual(await receiveUpload(deps, a, plan, chunks(data, 0, 50_000)), { artifactId: plan.id, storedBytes: data.length, complete: false });
  t.deepEqual(await receiveUpload(deps, a, plan, chunksThenFinish(data, data.length, 50_000, sha(data))), {
    artifactId: plan.id,
    storedBytes: data.length,
    complete: true,
  });
  const row = await deps.db.em().findOneOrFail(Artifact, { id: plan.id });
  t.is(row.sha256, sha(data), "the checksum from finish is the artifact's");
  t.true((await readAll(deps, plan.id)).equals(data));
});

test("a finish that names the wrong checksum is a checksum mismatch and discards the upload", async (t) => {
  const { deps, a, dir } = t.context;
  const data = randomBytes(90_000);
  const plan = planWithoutSha(data);
  const err = await t.throwsAsync(() => receiveUpload(deps, a, plan, chunksThenFinish(data, 0, 30_000, sha(Buffer.from("other")))), {
    instanceOf: ArtifactChecksumError,
  });
  t.is(err.actual, sha(data));
  await t.throwsAsync(() => getUploadStatus(deps.db.em(), a.trustId, plan.id), { instanceOf: NotFoundError });
  t.false((await readdir(dir)).some((f) => f.startsWith(plan.id)));
});

test("a finish before the last byte is refused, and the bytes before it are kept", async (t) => {
  const { deps, a } = t.context;
  const data = randomBytes(60_000);
  const plan = planWithoutSha(data);
  async function* early(): AsyncGenerator<UploadInput> {
    yield { offset: 0, data: data.subarray(0, 20_000) };
    yield { sha256: sha(data) };
  }
  await t.throwsAsync(() => receiveUpload(deps, a, plan, early()), { instanceOf: InvalidInputError, message: /finish: arrived after 20000 of 60000 bytes/ });
  t.is((await getUploadStatus(deps.db.em(), a.trustId, plan.id)).storedBytes, 20_000);
});

test("a resume without a checksum matches on id and size; one that names a checksum must match the known one", async (t) => {
  const { deps, a } = t.context;
  const data = randomBytes(80_000);
  const plan = planFor(data);
  await t.throwsAsync(() => receiveUpload(deps, a, plan, chunks(data, 0, 20_000, 40_000)));
  // The client lost the checksum it began with (a new process); its resume names none and finishes with it.
  t.true((await receiveUpload(deps, a, planWithoutSha(data, plan.id), chunksThenFinish(data, 40_000, 20_000, sha(data)))).complete);

  const other = randomBytes(80_000);
  const begunBare = planWithoutSha(other);
  await t.throwsAsync(() => receiveUpload(deps, a, begunBare, chunks(other, 0, 20_000, 20_000)));
  t.true((await receiveUpload(deps, a, planFor(other, begunBare.id), chunks(other, 20_000, 20_000))).complete, "a checksum named on resume is adopted");
  await t.throwsAsync(() => receiveUpload(deps, a, planFor(data, begunBare.id), chunks(data, 0, 20_000)), { instanceOf: FailedPreconditionError });
  await t.throwsAsync(() => receiveUpload(deps, a, planWithoutSha(Buffer.alloc(5), begunBare.id), chunks(Buffer.alloc(5), 0, 5)), {
    instanceOf: FailedPreconditionError,
    message: /begun as 80000 bytes/,
  });
});

test("a complete artifact uploaded again without a checksum in begin is compared with its finish", async (t) => {
  const { deps, a } = t.context;
  const data = randomBytes(10_000);
  const plan = planFor(data);
  await receiveUpload(deps, a, plan, chunks(data, 0, 10_000));
  t.true((await receiveUpload(deps, a, planWithoutSha(data, plan.id), chunksThenFinish(data, data.length, 1, sha(data)))).complete);
  async function* otherFinish(): AsyncGenerator<UploadInput> {
    yield { sha256: sha(Buffer.from("other")) };
  }
  await t.throwsAsync(() => receiveUpload(deps, a, planWithoutSha(data, plan.id), otherFinish()), { instanceOf: FailedPreconditionError, message: /is complete/ });
  t.true((await readAll(deps, plan.id)).equals(data), "the complete artifact is untouched");
});

test("a completed upload is synced to disk after it is answered, and the row records it", async (t) => {
  const { deps, a } = t.context;
  const data = randomBytes(40_000);
  const plan = planFor(data);
  await receiveUpload(deps, a, plan, chunks(data, 0, 10_000));
  await deps.syncs.idle();
  const row = await deps.db.em().findOneOrFail(Artifact, { id: plan.id });
  t.true(row.syncedAt instanceof Date);
});

test.serial("at start, a complete artifact never synced is kept if its bytes still match and reopened from 0 if they were damaged", async (t) => {
  const { deps, a, dir } = t.context;
  const intact = randomBytes(30_000);
  const damaged = randomBytes(30_000);
  const intactPlan = planFor(intact);
  const damagedPlan = planFor(damaged);
  await receiveUpload(deps, a, intactPlan, chunks(intact, 0, 10_000));
  await receiveUpload(deps, a, damagedPlan, chunks(damaged, 0, 10_000));
  await deps.syncs.idle();
  // As if the hub stopped after answering both complete but before their bytes reached the disk.
  await deps.db.em().nativeUpdate(Artifact, { id: { $in: [intactPlan.id, damagedPlan.id] } }, { syncedAt: null });
  const fh = await open(path.join(dir, damagedPlan.id), "r+");
  await fh.write(Buffer.alloc(4096), 0, 4096, 8192);
  await fh.close();

  t.is(await verifyUnsyncedArtifacts(deps), 1);

  const kept = await deps.db.em().findOneOrFail(Artifact, { id: intactPlan.id });
  t.true(kept.complete);
  t.true(kept.syncedAt instanceof Date);
  t.true((await readAll(deps, intactPlan.id)).equals(intact));

  const status = await getUploadStatus(deps.db.em(), a.trustId, damagedPlan.id);
  t.deepEqual(status, { artifactId: damagedPlan.id, storedBytes: 0, sizeBytes: 30_000, complete: false });
  await t.throwsAsync(() => readArtifact(deps, damagedPlan.id), { instanceOf: FailedPreconditionError }, "nobody downloads the damaged bytes");
  t.false((await readdir(dir)).some((f) => f.startsWith(damagedPlan.id)), "its file is gone");
  const audits = await deps.db.em().count(AuditEntry, { action: "artifact.reverted", target: `artifact:${damagedPlan.id}` });
  t.is(audits, 1);
  // The owner's next upload starts over and completes.
  t.true((await receiveUpload(deps, a, damagedPlan, chunks(damaged, 0, 10_000))).complete);
  t.true((await readAll(deps, damagedPlan.id)).equals(damaged));
});

test("hub artifacts are visible only to the trusts they are shared with, and grants are idempotent", async (t) => {
  const { deps, a, b } = t.context;
  const weights = randomBytes(3 * 1024 * 1024 + 17);
  async function* source() {
    for (let at = 0; at < weights.length; at += 1024 * 1024) yield weights.subarray(at, at + 1024 * 1024);
  }
  const artifact = await writeHubArtifact(deps, { purpose: "global-weights", actor: "system", data: source(), shareWith: [b.trustId] });
  t.is(artifact.sha256, sha(weights));
  t.is(artifact.ownerTrustId, null);
  t.is((await findVisibleArtifact(deps.db.em(), b.trustId, artifact.id)).id, artifact.id);
  await t.throwsAsync(() => findVisibleArtifact(deps.db.em(), a.trustId, artifact.id), { instanceOf: NotFoundError });
  t.true(await grantArtifactAccess(deps.db.em(), { artifactId: artifact.id, trustId: a.trustId, actor: "system" }));
  t.false(await grantArtifactAccess(deps.db.em(), { artifactId: artifact.id, trustId: a.trustId, actor: "system" }));
  t.is((await findVisibleArtifact(deps.db.em(), a.trustId, artifact.id)).id, artifact.id);
  t.true((await readAll(deps, artifact.id)).equals(weights));
  await t.throwsAsync(() => grantArtifactAccess(deps.db.em(), { artifactId: randomUUID(), trustId: a.trustId, actor: "system" }), { instanceOf: NotFoundError });
});

test.serial("a hub artifact over the size cap is refused and leaves nothing behind", async (t) => {
  const { deps, dir } = t.context;
  const before = await readdir(dir);
  async function* tooBig() {
    for (let i = 0; i < 5; i++) yield Buffer.alloc(1024 * 1024);
  }
  await t.throwsAsync(() => writeHubArtifact(deps, { purpose: "global-weights", actor: "system", data: tooBig() }), { instanceOf: ArtifactTooLargeError });
  t.deepEqual(await readdir(dir), before);
});
