/**
 * What the service does for a project: queue its frozen cohort's studies for import, report where the
 * import stands, serve its images to the trust's workloads (only studies still in the frozen cohort),
 * and delete its research copies.
 */
import { createReadStream } from "node:fs";
import { rm } from "node:fs/promises";
import * as path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { DataAccessClient } from "@flip/data-access/client.js";
import type { ImagingImportOutput } from "@flip/gen/flip/link/v1/tasks_pb.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import type pg from "pg";
import { findImage, imagesOfAccessions, type ImageRow } from "./catalog/images.js";
import { importCounts } from "./catalog/import-counts.js";
import { IMAGING_SCHEMA } from "./catalog/schema.js";
import { enqueueStudies, findProjectImport, projectAccessions, type AccessionRow, type EnqueueResult } from "./catalog/studies.js";
import type { ImportWorker } from "./imports/import-worker.js";
import { projectNiftiDir } from "./imports/nifti.js";
import type { ResearchStore } from "./store/research-store.js";

export interface ProjectImagingDeps {
  db: pg.Pool;
  dataAccess: DataAccessClient;
  store: ResearchStore;
  worker: ImportWorker;
  dataDir: string;
  log: Logger;
}

/** The project has nothing the request could act on (no frozen cohort, nothing imported). */
export class ImagingPreconditionError extends Error {
  override readonly name = "ImagingPreconditionError";
}

/** No such project import or image. */
export class ImagingNotFoundError extends Error {
  override readonly name = "ImagingNotFoundError";
}

/** A local service the answer depends on (data-access, the research store) is down; try again later. */
export class ImagingDependencyError extends Error {
  override readonly name = "ImagingDependencyError";
}

/** How long a project's cohort accession list is reused for image reads (a workload reads many images). */
const COHORT_CACHE_MS = 10_000;

export class ProjectImaging {
  private readonly cohortCache = new Map<string, { at: number; accessions: Promise<string[]> }>();

  constructor(private readonly deps: ProjectImagingDeps) {}

  /** The frozen cohort's accession numbers, from the trust's data-access service (never from the hub). */
  async cohortAccessions(projectId: string, signal?: AbortSignal): Promise<string[]> {
    try {
      const { accessionNumbers } = await this.deps.dataAccess.listCohortAccessions({ projectId }, { signal });
      return accessionNumbers;
    } catch (e) {
      const ce = ConnectError.from(e);
      if (ce.code === Code.NotFound) throw new ImagingPreconditionError("the project has no frozen cohort at this trust: the trust must approve it first");
      if (ce.code === Code.FailedPrecondition) throw new ImagingPreconditionError(`the project's frozen cohort cannot be used: ${ce.rawMessage}`);
      throw new ImagingDependencyError(`data-access could not list the cohort's studies (${Code[ce.code]}); try again when it is back`);
    }
  }

  private cachedCohort(projectId: string): Promise<string[]> {
    const hit = this.cohortCache.get(projectId);
    if (hit && Date.now() - hit.at < COHORT_CACHE_MS) return hit.accessions;
    const accessions = this.cohortAccessions(projectId);
    accessions.catch(() => this.cohortCache.delete(projectId));
    this.cohortCache.set(projectId, { at: Date.now(), accessions });
    return accessions;
  }

  /** Queues the cohort's studies (idempotent) and wakes the worker. */
  async requestImport(projectId: string, convertToNifti: boolean, signal?: AbortSignal): Promise<EnqueueResult> {
    const accessions = await this.cohortAccessions(projectId, signal);
    const result = await enqueueStudies(this.deps.db, projectId, accessions, convertToNifti);
    this.deps.log.info({ projectId, requested: result.requested, queued: result.queued, convertToNifti }, "import requested");
    this.deps.worker.poke();
    return result;
  }

  /** Counts (what may leave the trust) and each accession's state (what stays inside it). */
  async status(projectId: string): Promise<{ counts: ImagingImportOutput; accessions: AccessionRow[]; convertToNifti: boolean; updatedAt: Date }> {
    const project = await findProjectImport(this.deps.db, projectId);
    if (!project) throw new ImagingNotFoundError("no import was requested for this project at this trust");
    const counts = await importCounts(this.deps.db, projectId);
    counts.waitingForWindow = this.deps.worker.waitingForWindow() && counts.studiesQueued > 0n;
    return { counts, accessions: await projectAccessions(this.deps.db, projectId), convertToNifti: project.convertToNifti, updatedAt: project.updatedAt };
  }

  /** The project's images whose study is still in its frozen cohort. */
  async listImages(projectId: string): Promise<ImageRow[]> {
    if (!(await findProjectImport(this.deps.db, projectId))) throw new ImagingPreconditionError("the project's imaging has not been imported at this trust");
    return await imagesOfAccessions(this.deps.db, projectId, await this.cachedCohort(projectId));
  }

  /** One image of the project, streamed; NOT_FOUND for another project's image or one that left the cohort. */
  async readImage(projectId: string, imageId: string, signal?: AbortSignal): Promise<{ sizeBytes: number; chunks: AsyncIterable<Uint8Array> }> {
    const image = await findImage(this.deps.db, projectId, imageId);
    const notFound = new ImagingNotFoundError(`no image "${imageId}" in this project's cohort`);
    if (!image) throw notFound;
    if (!(await this.cachedCohort(projectId)).includes(image.accession)) throw notFound;
    if (image.format === "nifti") {
      return { sizeBytes: image.sizeBytes, chunks: createReadStream(path.join(this.deps.dataDir, image.location), { highWaterMark: 256 * 1024, signal }) };
    }
    return { sizeBytes: image.sizeBytes, chunks: await this.deps.store.readInstance(image.location, signal) };
  }

  /**
   * Deletes the project's research copies (store studies, NIfTI files) and its index; queued imports go
   * with it. An import in flight finds its row gone and removes what it stored (see importStudy).
   */
  async deleteProject(projectId: string, reason: string): Promise<{ studies: number; images: number; nifti: number }> {
    const { db, store, dataDir, log } = this.deps;
    const { rows: studies } = await db.query<{ store_study_id: string | null }>(`select store_study_id from ${IMAGING_SCHEMA}.study where project_id = $1`, [projectId]);
    const { rows: images } = await db.query<{ format: string; location: string }>(`select format, location from ${IMAGING_SCHEMA}.image where project_id = $1`, [projectId]);
    let deletedStudies = 0;
    for (const id of new Set(studies.map((s) => s.store_study_id).filter((s): s is string => !!s))) if (await store.deleteStudy(id)) deletedStudies++;
    const nifti = images.filter((i) => i.format === "nifti");
    await db.query(`delete from ${IMAGING_SCHEMA}.project where project_id = $1`, [projectId]);
    await rm(projectNiftiDir(dataDir, projectId), { recursive: true, force: true });
    this.cohortCache.delete(projectId);
    const result = { studies: deletedStudies, images: images.length - nifti.length, nifti: nifti.length };
    log.info({ projectId, reason, ...result }, "project's research copies deleted");
    return result;
  }
}
