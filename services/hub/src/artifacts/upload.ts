import { createHash, randomUUID, type Hash } from "node:crypto";
import { LockMode } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { appendAudit } from "../audit/chain.js";
import { AlreadyExistsError, FailedPreconditionError, InvalidInputError } from "../rpc/domain-errors.js";
import type { ArtifactDeps } from "./deps.js";
import { Artifact } from "./entities.js";
import { ArtifactChecksumError, ArtifactOffsetError, UploadSupersededError } from "./errors.js";
import { ARTIFACT_CHUNK_BYTES, type ArtifactPart } from "./store.js";
import type { UploadPlan } from "./validate.js";

/** The trust that uploads, as the audit log names it. */
export interface Uploader {
  trustId: string;
  trustCode: string;
}

/** Bytes at an offset, as a chunk message carries them. */
export interface UploadChunkInput {
  offset: bigint | number;
  data: Uint8Array;
}

export interface UploadOutcome {
  artifactId: string;
  /** Durable bytes: an upload resumes here. */
  storedBytes: number;
  complete: boolean;
}

/** Largest chunk accepted: bounds the hub's memory per stream (clients send ARTIFACT_CHUNK_BYTES). */
export const MAX_UPLOAD_CHUNK_BYTES = 4 * ARTIFACT_CHUNK_BYTES;

/**
 * Receives one upload stream of `plan.id` from `uploader`: begins or resumes the artifact, appends the
 * chunks at the stored offset, and completes it when the last byte arrives and the checksum matches.
 *
 * Offsets: a chunk must not start past the stored offset (a gap is refused with the expected offset). A
 * chunk that starts before it overlaps bytes already stored; those bytes are skipped, not rewritten. That
 * makes a resume race-free: a client that read an older offset (the previous stream's last bytes were
 * recorded just after it asked) re-sends a little, and nothing breaks.
 *
 * A broken stream keeps what arrived: the bytes are synced and their offset recorded before this returns
 * (or throws), so GetUploadStatus reports where to resume.
 */
export async function receiveUpload(
  deps: ArtifactDeps,
  uploader: Uploader,
  plan: UploadPlan,
  chunks: AsyncIterable<UploadChunkInput>,
): Promise<UploadOutcome> {
  // Refuse a stranger before taking the lease, so a wrong begin cannot stop the owner's running upload.
  const existing = await deps.db.em().findOne(Artifact, { id: plan.id });
  if (existing) checkSamePayload(existing, uploader, plan);
  const lease = await deps.leases.acquire(plan.id);
  try {
    const session = randomUUID();
    const row = await beginOrResume(deps.db.em(), uploader, plan, session);
    if (row.complete) return { artifactId: plan.id, storedBytes: row.sizeBytes, complete: true };
    const part = await deps.store.openPart(plan.id);
    const writer = new PartWriter(deps, uploader, plan, session, part);
    try {
      await writer.resumeFrom(row.storedBytes);
      return await writer.consume(chunks, lease.signal);
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
      });
      tx.persist(created);
      return created;
    }
    checkSamePayload(found, uploader, plan);
    if (!found.complete) found.uploadSession = session;
    return found;
  });
}

/** A resumed (or repeated) upload must come from the owner and declare the same bytes. */
function checkSamePayload(found: Artifact, uploader: Uploader, plan: UploadPlan): void {
  // Ids are client-chosen UUIDs; another owner's id is refused without saying more about that artifact.
  if (found.ownerTrustId !== uploader.trustId) throw new AlreadyExistsError(`begin.artifact_id: ${plan.id} is already used; choose a new id`);
  if (found.sizeBytes !== plan.sizeBytes || found.sha256 !== plan.sha256) {
    throw new FailedPreconditionError(
      `artifact ${plan.id} was begun as ${found.sizeBytes} bytes with sha256 ${found.sha256}${found.complete ? " and is complete" : ""}; ` +
        "a different payload needs a new artifact id",
    );
  }
}

/** Appends one stream's chunks to a part, hashing as it goes, with durable checkpoints. */
class PartWriter {
  private stored = 0;
  private durable = 0;
  private readonly hash: Hash = createHash("sha256");
  /** Set once the part was committed or discarded: nothing is left to checkpoint. */
  private settled = false;

  constructor(
    private readonly deps: ArtifactDeps,
    private readonly uploader: Uploader,
    private readonly plan: UploadPlan,
    private readonly session: string,
    private readonly part: ArtifactPart,
  ) {}

  /** Trusts only the recorded offset: a longer part holds bytes written after the last sync. */
  async resumeFrom(recorded: number): Promise<void> {
    const onDisk = await this.part.size();
    const start = Math.min(onDisk, recorded);
    if (onDisk !== start) await this.part.truncate(start);
    if (start < recorded) {
      // The store lost bytes the database recorded (e.g. a restored disk); resume from what is there.
      this.deps.log.warn({ artifactId: this.plan.id, recorded, onDisk }, "artifact part shorter than its recorded offset");
      await this.record(start);
    }
    // The hash state is not persisted between streams: re-read the stored prefix (bounded memory, one chunk at a time).
    for await (const b of this.deps.store.readPart(this.plan.id, start, ARTIFACT_CHUNK_BYTES)) this.hash.update(b);
    this.stored = start;
    this.durable = start;
  }

  async consume(chunks: AsyncIterable<UploadChunkInput>, stop: AbortSignal): Promise<UploadOutcome> {
    const it = chunks[Symbol.asyncIterator]();
    try {
      // An empty artifact, or a resume after every byte arrived but before completion was recorded.
      if (this.stored === this.plan.sizeBytes) return await this.complete();
      for (let r = await nextOrStop(it, stop, this.plan.id); !r.done; r = await nextOrStop(it, stop, this.plan.id)) {
        await this.write(r.value);
        if (this.stored === this.plan.sizeBytes) return await this.complete();
        if (this.stored - this.durable >= this.deps.checkpointBytes) await this.checkpoint();
      }
      await this.checkpoint();
      this.deps.log.debug({ artifactId: this.plan.id, storedBytes: this.stored }, "upload stream ended before the last byte");
      return { artifactId: this.plan.id, storedBytes: this.stored, complete: false };
    } catch (e) {
      await this.checkpointAfterFailure();
      throw e;
    }
  }

  private async write(chunk: UploadChunkInput): Promise<void> {
    const offset = Number(chunk.offset);
    if (chunk.data.length > MAX_UPLOAD_CHUNK_BYTES) throw new InvalidInputError("chunk.data", `must be at most ${MAX_UPLOAD_CHUNK_BYTES} bytes`);
    if (offset > this.stored) throw new ArtifactOffsetError(this.stored, offset);
    const fresh = chunk.data.subarray(this.stored - offset);
    if (fresh.length === 0) return;
    if (this.stored + fresh.length > this.plan.sizeBytes) {
      throw new InvalidInputError("chunk.data", `ends at ${offset + chunk.data.length}, past the declared size of ${this.plan.sizeBytes} bytes`);
    }
    await this.part.append(fresh);
    this.hash.update(fresh);
    this.stored += fresh.length;
  }

  private async checkpoint(): Promise<void> {
    if (this.stored === this.durable) return;
    await this.part.sync();
    await this.record(this.stored);
    this.durable = this.stored;
  }

  /**
   * Keeps what arrived before a broken stream, including when a newer stream in this process takes over
   * (it waits for this). A failure here must not hide the original error.
   */
  private async checkpointAfterFailure(): Promise<void> {
    if (this.settled) return;
    try {
      await this.checkpoint();
      this.deps.log.info({ artifactId: this.plan.id, storedBytes: this.stored }, "upload interrupted; offset recorded for resumption");
    } catch (e) {
      // Superseded by a stream on another replica: its offset counts, not ours.
      if (e instanceof UploadSupersededError) this.deps.log.info({ artifactId: this.plan.id }, "interrupted upload was superseded");
      else this.deps.log.warn({ artifactId: this.plan.id, err: e }, "could not record the offset of an interrupted upload");
    }
  }

  /** Records a durable offset, unless a newer stream of this artifact took over. */
  private async record(storedBytes: number): Promise<void> {
    const updated = await this.deps.db.em().nativeUpdate(Artifact, { id: this.plan.id, uploadSession: this.session, complete: false }, { storedBytes });
    if (updated === 0) throw new UploadSupersededError(this.plan.id);
  }

  private async complete(): Promise<UploadOutcome> {
    await this.part.sync();
    const actual = this.hash.digest("hex");
    const { id, sha256 } = this.plan;
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
      row.storedBytes = row.sizeBytes;
      row.complete = true;
      row.completedAt = new Date();
      row.uploadSession = null;
      await tx.flush();
      await appendAudit(tx, {
        actor: `trust:${this.uploader.trustCode}`,
        action: "artifact.uploaded",
        target: `artifact:${id}`,
        after: { ownerTrustId: row.ownerTrustId, purpose: row.purpose, taskId: row.taskId, sizeBytes: row.sizeBytes, sha256: row.sha256 },
      });
    });
    this.deps.log.info({ artifactId: id, trustId: this.uploader.trustId, sizeBytes: this.plan.sizeBytes, purpose: this.plan.purpose }, "artifact uploaded");
    return { artifactId: id, storedBytes: this.plan.sizeBytes, complete: true };
  }

  async close(): Promise<void> {
    await this.part.close();
  }
}

/** The next chunk, unless a newer stream of the artifact takes over first. */
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
