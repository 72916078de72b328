import { createHash, randomUUID, type Hash } from "node:crypto";
import { LockMode } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { PositionalWrites } from "@flip/shared/files/positional-writes.js";
import { skipBytes } from "@flip/shared/protobuf/parts-reader.js";
import { appendAudit } from "../audit/chain.js";
import { AlreadyExistsError, FailedPreconditionError, InvalidInputError } from "../domain/errors.js";
import type { ArtifactDeps } from "./deps.js";
import { Artifact } from "./entities.js";
import { ArtifactChecksumError, ArtifactOffsetError, UploadSupersededError } from "./errors.js";
import { ARTIFACT_CHUNK_BYTES, type ArtifactPart } from "./store.js";
import { validateSha256, type UploadPlan } from "./validate.js";

/** The trust that uploads, as the audit log names it. */
export interface Uploader {
  trustId: string;
  trustCode: string;
}

/** Bytes at an offset, as a chunk message carries them: one array, or the views a message arrived in. */
export interface UploadChunkInput {
  offset: bigint | number;
  data: Uint8Array | readonly Uint8Array[];
}

/** The checksum an upload sends after its last chunk when its `begin` named none. */
export interface UploadFinishInput {
  sha256: string;
}

/** One message of an upload after `begin`. */
export type UploadInput = UploadChunkInput | UploadFinishInput;

export interface UploadOutcome {
  artifactId: string;
  /** Stored bytes: an upload resumes here. */
  storedBytes: number;
  complete: boolean;
}

/** Largest chunk accepted: bounds the hub's memory per stream (clients send ARTIFACT_CHUNK_BYTES). */
export const MAX_UPLOAD_CHUNK_BYTES = 4 * ARTIFACT_CHUNK_BYTES;

/**
 * Bytes an upload may have queued for the disk or being written: the network and the disk overlap, and
 * the memory the stream holds stays bounded whatever the artifact's size.
 */
const WRITES_IN_FLIGHT_BYTES = 8 * 1024 * 1024;

/** A stored offset is recorded at least this often while bytes arrive, besides every `checkpointBytes`. */
const RECORD_EVERY_MS = 5_000;

/**
 * Receives one upload stream of `plan.id` from `uploader`: begins or resumes the artifact, writes the
 * chunks at the stored offset, and completes it once every byte arrived and the checksum (from `begin`,
 * or from the `finish` that follows the last chunk) matches.
 *
 * Offsets: a chunk must not start past the stored offset (a gap is refused with the expected offset). A
 * chunk that starts before it overlaps bytes already stored; those bytes are skipped, not rewritten. That
 * makes a resume race-free: a client that read an older offset (the previous stream's last bytes were
 * recorded just after it asked) re-sends a little, and nothing breaks.
 *
 * A broken stream keeps what arrived: every write is finished and its offset recorded before this
 * returns (or throws), so GetUploadStatus reports where to resume.
 */
export async function receiveUpload(deps: ArtifactDeps, uploader: Uploader, plan: UploadPlan, messages: AsyncIterable<UploadInput>): Promise<UploadOutcome> {
  // Refuse a stranger before taking the lease, so a wrong begin cannot stop the owner's running upload.
  const existing = await deps.db.em().findOne(Artifact, { id: plan.id });
  if (existing) checkSamePayload(existing, uploader, plan);
  const lease = await deps.leases.acquire(plan.id);
  try {
    const session = randomUUID();
    const row = await beginOrResume(deps.db.em(), uploader, plan, session);
    if (row.complete) {
      // A begin with a checksum was compared already; one without is compared with its finish.
      if (plan.sha256 === null) await confirmComplete(row, messages, lease.signal);
      return { artifactId: plan.id, storedBytes: row.sizeBytes, complete: true };
    }
    const part = await deps.store.openPart(plan.id);
    const writer = new PartWriter(deps, uploader, plan, row.sha256 ?? null, session, part);
    try {
      await writer.resumeFrom(row.storedBytes);
      return await writer.consume(messages, lease.signal);
    } finally {
      await writer.close();
    }
  } finally {
    lease.release();
  }
}

/** Creates the artifact row, or checks that a resumed upload declares the same bytes, and claims it for `session`. */
async function beginOrResume(em: EntityManager, uploader: Uploader, plan: UploadPlan, session: string): Promise<Artifact> {
  return await em.transactional(async (tx) => {
    const found = await tx.findOne(Artifact, { id: plan.id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!found) {
      const created = tx.create(Artifact, {
        id: plan.id,
        ownerTrustId: uploader.trustId,
        purpose: plan.purpose,
        taskId: plan.taskId,
        sizeBytes: plan.sizeBytes,
        sha256: plan.sha256,
        storedBytes: 0,
        complete: false,
        uploadSession: session,
        completedAt: null,
        syncedAt: null,
      });
      tx.persist(created);
      return created;
    }
    checkSamePayload(found, uploader, plan);
    if (!found.complete) {
      found.uploadSession = session;
      // Begun without a checksum, resumed with one: the artifact is now checked against it.
      found.sha256 ??= plan.sha256;
    }
    return found;
  });
}

/**
 * A resumed (or repeated) upload must come from the owner and declare the same size, and a checksum it
 * names must be the one already known, if any.
 */
function checkSamePayload(found: Artifact, uploader: Uploader, plan: UploadPlan): void {
  // Ids are client-chosen UUIDs; another owner's id is refused without saying more about that artifact.
  if (found.ownerTrustId !== uploader.trustId) throw new AlreadyExistsError(`begin.artifact_id: ${plan.id} is already used; choose a new id`);
  if (found.sizeBytes !== plan.sizeBytes || (plan.sha256 !== null && found.sha256 != null && found.sha256 !== plan.sha256)) {
    throw otherPayload(found);
  }
}

/** What a begin or finish is compared with. */
interface KnownPayload {
  id: string;
  sizeBytes: number;
  sha256?: string | null;
  complete: boolean;
}

function otherPayload(found: KnownPayload): FailedPreconditionError {
  const sha = found.sha256 == null ? "" : ` with sha256 ${found.sha256}`;
  return new FailedPreconditionError(
    `artifact ${found.id} was begun as ${found.sizeBytes} bytes${sha}${found.complete ? " and is complete" : ""}; a different payload needs a new artifact id`,
  );
}

/** Validates a finish message's checksum; one that differs from a checksum known already is another payload. */
function finishChecksum(found: KnownPayload, finish: UploadFinishInput): string {
  const sha256 = validateSha256(finish.sha256, "finish.sha256");
  if (found.sha256 != null && found.sha256 !== sha256) throw otherPayload(found);
  return sha256;
}

/**
 * An upload without a checksum in `begin` of an artifact that is complete already: chunks are skipped
 * (they can only repeat stored bytes), and the `finish` must name the artifact's checksum.
 */
async function confirmComplete(row: Artifact, messages: AsyncIterable<UploadInput>, stop: AbortSignal): Promise<void> {
  const it = messages[Symbol.asyncIterator]();
  for (let r = await nextOrStop(it, stop, row.id); !r.done; r = await nextOrStop(it, stop, row.id)) {
    const m = r.value;
    if (isFinish(m)) {
      finishChecksum(row, m);
      return;
    }
    const end = Number(m.offset) + byteLength(m.data);
    if (end > row.sizeBytes) throw new InvalidInputError("chunk.data", `ends at ${end}, past the declared size of ${row.sizeBytes} bytes`);
  }
}

/** Writes one stream's chunks to a part, hashing as they pass, with a bounded number of writes in flight. */
class PartWriter {
  /** Bytes accepted: hashed, and written or being written. */
  private accepted = 0;
  /** The offset last recorded in the row. */
  private recorded = 0;
  private recordedAt = Date.now();
  private writes: PositionalWrites;
  private readonly hash: Hash = createHash("sha256");
  /** Set once the part was committed or discarded: nothing is left to record. */
  private settled = false;

  constructor(
    private readonly deps: ArtifactDeps,
    private readonly uploader: Uploader,
    private readonly plan: UploadPlan,
    /** The checksum an earlier stream's `begin` named, if any: a `finish` must match it. */
    private readonly knownSha256: string | null,
    private readonly session: string,
    private readonly part: ArtifactPart,
  ) {
    this.writes = this.writesFrom(0);
  }

  private writesFrom(start: number): PositionalWrites {
    return new PositionalWrites((data, at) => this.part.writeAt(data, at), start, WRITES_IN_FLIGHT_BYTES);
  }

  /** Trusts only the recorded offset: a longer part holds bytes whose offset was never reported. */
  async resumeFrom(recorded: number): Promise<void> {
    const onDisk = await this.part.size();
    const start = Math.min(onDisk, recorded);
    if (onDisk !== start) await this.part.truncate(start);
    if (start < recorded) {
      // The store lost bytes the database recorded (e.g. a restored disk); resume from what is there.
      this.deps.log.warn({ artifactId: this.plan.id, recorded, onDisk }, "artifact part shorter than its recorded offset");
      await this.record(start);
    }
    // The hash state is not persisted between streams: re-read the stored prefix (bounded memory, one
    // chunk at a time). Bytes a crash damaged there surface as a checksum mismatch at the end.
    for await (const b of this.deps.store.readPart(this.plan.id, start, ARTIFACT_CHUNK_BYTES)) this.hash.update(b);
    this.accepted = this.recorded = start;
    this.writes = this.writesFrom(start);
  }

  async consume(messages: AsyncIterable<UploadInput>, stop: AbortSignal): Promise<UploadOutcome> {
    const it = messages[Symbol.asyncIterator]();
    const { sizeBytes } = this.plan;
    try {
      for (;;) {
        // Every byte is here and begin named the checksum: complete without waiting for more. Without
        // one in begin, the client sends `finish` next.
        if (this.accepted === sizeBytes && this.plan.sha256 !== null) return await this.complete(this.plan.sha256);
        const r = await nextOrStop(it, stop, this.plan.id);
        if (r.done) break;
        if (isFinish(r.value)) {
          if (this.accepted < sizeBytes) throw new InvalidInputError("finish", `arrived after ${this.accepted} of ${sizeBytes} bytes; send every byte first`);
          return await this.complete(finishChecksum({ id: this.plan.id, sizeBytes, sha256: this.knownSha256, complete: false }, r.value));
        }
        await this.accept(r.value);
      }
      await this.writes.drain();
      await this.recordWritten();
      this.deps.log.debug({ artifactId: this.plan.id, storedBytes: this.writes.written }, "upload stream ended before the artifact was complete");
      return { artifactId: this.plan.id, storedBytes: this.writes.written, complete: false };
    } catch (e) {
      await this.recordAfterFailure();
      throw e;
    }
  }

  /** Checks a chunk, hashes its new bytes and starts their write; waits while too many writes are in flight. */
  private async accept(chunk: UploadChunkInput): Promise<void> {
    const offset = Number(chunk.offset);
    const pieces = chunk.data instanceof Uint8Array ? [chunk.data] : chunk.data;
    const length = byteLength(pieces);
    if (length > MAX_UPLOAD_CHUNK_BYTES) throw new InvalidInputError("chunk.data", `must be at most ${MAX_UPLOAD_CHUNK_BYTES} bytes`);
    if (offset > this.accepted) throw new ArtifactOffsetError(this.accepted, offset);
    const fresh = skipBytes(pieces, this.accepted - offset);
    const freshLength = offset + length - this.accepted;
    if (freshLength <= 0) return;
    if (offset + length > this.plan.sizeBytes) {
      throw new InvalidInputError("chunk.data", `ends at ${offset + length}, past the declared size of ${this.plan.sizeBytes} bytes`);
    }
    for (const p of fresh) this.hash.update(p);
    this.deps.metrics.artifactBytes("upload", freshLength);
    const at = this.accepted;
    this.accepted += freshLength;
    await this.writes.add(fresh, at, freshLength);
    const written = this.writes.written;
    if (written - this.recorded >= this.deps.checkpointBytes || (written > this.recorded && Date.now() - this.recordedAt >= RECORD_EVERY_MS)) {
      await this.recordWritten();
    }
  }

  /** Records the written offset in the row (no fsync: see `entities.ts`). */
  private async recordWritten(): Promise<void> {
    if (this.writes.written !== this.recorded) await this.record(this.writes.written);
  }

  /**
   * Keeps what arrived before a broken stream, including when a newer stream in this process takes over
   * (it waits for this). A failure here must not hide the original error.
   */
  private async recordAfterFailure(): Promise<void> {
    if (this.settled) return;
    try {
      await this.writes.drain().catch((e: unknown) => this.deps.log.warn({ artifactId: this.plan.id, err: e }, "an artifact write failed"));
      await this.recordWritten();
      this.deps.log.info({ artifactId: this.plan.id, storedBytes: this.writes.written }, "upload interrupted; offset recorded for resumption");
    } catch (e) {
      // Superseded by a stream on another replica: its offset counts, not ours.
      if (e instanceof UploadSupersededError) this.deps.log.info({ artifactId: this.plan.id }, "interrupted upload was superseded");
      else this.deps.log.warn({ artifactId: this.plan.id, err: e }, "could not record the offset of an interrupted upload");
    }
  }

  /** Records a stored offset, unless a newer stream of this artifact took over. */
  private async record(storedBytes: number): Promise<void> {
    const updated = await this.deps.db.em().nativeUpdate(Artifact, { id: this.plan.id, uploadSession: this.session, complete: false }, { storedBytes });
    if (updated === 0) throw new UploadSupersededError(this.plan.id);
    this.recorded = storedBytes;
    this.recordedAt = Date.now();
  }

  /**
   * Checks the whole artifact against `sha256` and, when it matches, makes it complete and answers at
   * once; the bytes reach the disk in the background (`durability.ts`).
   */
  private async complete(sha256: string): Promise<UploadOutcome> {
    await this.writes.drain();
    const actual = this.hash.digest("hex");
    const { id, sizeBytes } = this.plan;
    if (actual !== sha256) {
      // Which bytes are wrong is unknowable, so none are kept: the row goes too, and a retry starts from 0.
      this.settled = true;
      await this.deps.store.discardPart(id);
      await this.deps.db.em().nativeDelete(Artifact, { id, uploadSession: this.session, complete: false });
      this.deps.log.warn({ artifactId: id, trustId: this.uploader.trustId }, "artifact checksum mismatch; upload discarded");
      throw new ArtifactChecksumError(id, sha256, actual);
    }
    await this.deps.db.em().transactional(async (tx) => {
      const row = await tx.findOne(Artifact, { id, uploadSession: this.session, complete: false }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!row) throw new UploadSupersededError(id);
      // The file is renamed before the row says complete: a crash in between leaves an incomplete row
      // whose next upload rewrites the file, never a complete row without its file.
      await this.deps.store.commit(id);
      this.settled = true;
      row.sha256 = sha256;
      row.storedBytes = row.sizeBytes;
      row.complete = true;
      row.completedAt = new Date();
      row.uploadSession = null;
      row.syncedAt = null;
      await tx.flush();
      await appendAudit(tx, {
        actor: `trust:${this.uploader.trustCode}`,
        action: "artifact.uploaded",
        target: `artifact:${id}`,
        after: { ownerTrustId: row.ownerTrustId, purpose: row.purpose, taskId: row.taskId, sizeBytes: row.sizeBytes, sha256 },
      });
    });
    this.deps.syncs.schedule(id);
    this.deps.log.info({ artifactId: id, trustId: this.uploader.trustId, sizeBytes, purpose: this.plan.purpose }, "artifact uploaded");
    return { artifactId: id, storedBytes: sizeBytes, complete: true };
  }

  async close(): Promise<void> {
    // A write still in flight (e.g. recording failed) must end before its handle closes.
    await this.writes.settle();
    await this.part.close();
  }
}

function isFinish(m: UploadInput): m is UploadFinishInput {
  return "sha256" in m;
}

function byteLength(data: Uint8Array | readonly Uint8Array[]): number {
  if (data instanceof Uint8Array) return data.length;
  let n = 0;
  for (const p of data) n += p.length;
  return n;
}

/** The next message, unless a newer stream of the artifact takes over first. */
async function nextOrStop<T>(it: AsyncIterator<T>, stop: AbortSignal, artifactId: string): Promise<IteratorResult<T>> {
  if (stop.aborted) throw new UploadSupersededError(artifactId);
  const next = it.next();
  return await new Promise<IteratorResult<T>>((resolve, reject) => {
    const onStop = () => {
      // The abandoned read settles later (the old connection ends); its outcome no longer matters.
      next.catch(() => undefined);
      reject(new UploadSupersededError(artifactId));
    };
    stop.addEventListener("abort", onStop, { once: true });
    next.then(
      (r) => {
        stop.removeEventListener("abort", onStop);
        resolve(r);
      },
      (e: unknown) => {
        stop.removeEventListener("abort", onStop);
        reject(e);
      },
    );
  });
}
