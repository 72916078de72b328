/**
 * The ImagingService handlers: validate the request, call one ProjectImaging operation, map its errors
 * to Connect codes. The caller's key is checked by the interceptor (shared/auth/internal-key.ts).
 * Accession numbers and UIDs never reach the logs; project ids, counts and timings do.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import {
  DeleteProjectImagesResponseSchema,
  FindStudiesResponseSchema,
  GetImportStatusResponseSchema,
  ImagingService,
  ImportState,
  ImportStudiesResponseSchema,
  ListProjectImagesResponseSchema,
  MatchOutcome,
  ReadImageResponseSchema,
} from "@flip/gen/flip/imaging/v1/imaging_pb.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { StudyState } from "./catalog/schema.js";
import { PacsRequestError, PacsUnavailableError, type PacsClient } from "./pacs/pacs.js";
import { ImagingDependencyError, ImagingNotFoundError, ImagingPreconditionError, type ProjectImaging } from "./project-imaging.js";
import { ResearchStoreUnavailableError } from "./store/research-store.js";

const MAX_ID_LENGTH = 200;
const MAX_ACCESSIONS = 1_000;
/** Chunks of an image on the wire. */
const CHUNK_BYTES = 256 * 1024;

const STATE: Record<StudyState, ImportState> = {
  queued: ImportState.QUEUED,
  importing: ImportState.IMPORTING,
  imported: ImportState.IMPORTED,
  failed: ImportState.FAILED,
  not_found: ImportState.NOT_FOUND,
  ambiguous: ImportState.AMBIGUOUS,
};

export function createImagingService(imaging: ProjectImaging, pacs: PacsClient, log: Logger): ServiceImpl<typeof ImagingService> {
  return {
    async findStudies(req, ctx) {
      if (req.accessionNumbers.length === 0) throw new ConnectError("accession_numbers: name at least one accession number", Code.InvalidArgument);
      if (req.accessionNumbers.length > MAX_ACCESSIONS) throw new ConnectError(`accession_numbers: at most ${MAX_ACCESSIONS} at once`, Code.InvalidArgument);
      req.accessionNumbers.forEach((a, i) => text(`accession_numbers[${i}]`, a, 64));
      return await handled(log, "FindStudies", {}, async () => {
        const matches = [];
        for (const accession of req.accessionNumbers) {
          const studies = await pacs.findByAccession(accession, ctx.signal);
          const outcome = studies.length === 0 ? MatchOutcome.NOT_FOUND : studies.length === 1 ? MatchOutcome.FOUND : MatchOutcome.AMBIGUOUS;
          matches.push({
            accessionNumber: accession,
            outcome,
            studies: studies.map((s) => ({ accessionNumber: s.accessionNumber, studyInstanceUid: s.studyInstanceUid, modality: s.modality, seriesCount: s.seriesCount, instanceCount: s.instanceCount })),
          });
        }
        return create(FindStudiesResponseSchema, { matches });
      });
    },

    async importStudies(req, ctx) {
      const ids = { projectId: projectId(req.projectId) };
      return await handled(log, "ImportStudies", ids, async () => {
        const r = await imaging.requestImport(ids.projectId, req.convertToNifti, ctx.signal);
        return create(ImportStudiesResponseSchema, { studiesRequested: BigInt(r.requested), studiesQueued: BigInt(r.queued) });
      });
    },

    async getImportStatus(req) {
      const ids = { projectId: projectId(req.projectId) };
      return await handled(log, "GetImportStatus", ids, async () => {
        const s = await imaging.status(ids.projectId);
        return create(GetImportStatusResponseSchema, {
          counts: s.counts,
          convertToNifti: s.convertToNifti,
          updatedAt: timestampFromDate(s.updatedAt),
          accessions: s.accessions.map((a) => ({
            accessionNumber: a.accession,
            state: STATE[a.state],
            reason: a.reason ?? "",
            attempts: a.attempts,
            studyKey: a.studyKey ?? "",
            instances: a.instances,
            updatedAt: timestampFromDate(a.updatedAt),
          })),
        });
      });
    },

    async listProjectImages(req) {
      const ids = { projectId: projectId(req.projectId) };
      return await handled(log, "ListProjectImages", ids, async () => {
        const images = await imaging.listImages(ids.projectId);
        return create(ListProjectImagesResponseSchema, {
          images: images.map((i) => ({ imageId: i.imageId, format: i.format, sizeBytes: BigInt(i.sizeBytes), studyKey: i.studyKey, seriesKey: i.seriesKey, modality: i.modality })),
        });
      });
    },

    async *readImage(req, ctx) {
      const ids = { projectId: projectId(req.projectId) };
      const imageId = text("image_id", req.imageId, MAX_ID_LENGTH);
      let image;
      try {
        image = await imaging.readImage(ids.projectId, imageId, ctx.signal);
      } catch (e) {
        throw toConnectError(e, log, "ReadImage", ids);
      }
      let first = true;
      try {
        for await (const chunk of image.chunks) {
          for (let at = 0; at < chunk.byteLength; at += CHUNK_BYTES) {
            yield create(ReadImageResponseSchema, { data: chunk.subarray(at, at + CHUNK_BYTES), sizeBytes: first ? BigInt(image.sizeBytes) : 0n });
            first = false;
          }
        }
      } catch (e) {
        throw toConnectError(e, log, "ReadImage", ids);
      }
    },

    async deleteProjectImages(req) {
      const ids = { projectId: projectId(req.projectId) };
      const reason = text("reason", req.reason, 500);
      return await handled(log, "DeleteProjectImages", ids, async () => {
        const d = await imaging.deleteProject(ids.projectId, reason || "not given");
        return create(DeleteProjectImagesResponseSchema, { studiesDeleted: BigInt(d.studies), imagesDeleted: BigInt(d.images), niftiDeleted: BigInt(d.nifti) });
      });
    },
  };
}

/** Routes for serve(): the ImagingService on a Connect router. */
export function imagingRoutes(imaging: ProjectImaging, pacs: PacsClient, log: Logger): (router: ConnectRouter) => void {
  const impl = createImagingService(imaging, pacs, log);
  return (router) => router.service(ImagingService, impl);
}

async function handled<T>(log: Logger, rpc: string, ids: Record<string, string>, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    const result = await work();
    log.info({ rpc, ...ids, ms: Date.now() - started }, "request served");
    return result;
  } catch (e) {
    throw toConnectError(e, log, rpc, ids);
  }
}

/** Maps domain errors to codes; anything unexpected becomes Internal with a fixed message (details in the log). */
function toConnectError(e: unknown, log: Logger, rpc: string, ids: Record<string, string>): ConnectError {
  const refuse = (code: Code, message: string, level: "info" | "warn" = "info") => {
    log[level]({ rpc, ...ids, code: Code[code] }, "request refused");
    return new ConnectError(message, code);
  };
  if (e instanceof ConnectError) return refuse(e.code, e.rawMessage);
  if (e instanceof ImagingPreconditionError) return refuse(Code.FailedPrecondition, e.message);
  if (e instanceof ImagingNotFoundError) return refuse(Code.NotFound, e.message);
  if (e instanceof ImagingDependencyError) return refuse(Code.Unavailable, e.message, "warn");
  if (e instanceof PacsUnavailableError) return refuse(Code.Unavailable, `the PACS is unreachable: ${e.message}`, "warn");
  if (e instanceof PacsRequestError) return refuse(Code.FailedPrecondition, `the PACS refused the request: ${e.message}`, "warn");
  if (e instanceof ResearchStoreUnavailableError) return refuse(Code.Unavailable, "the research store is unreachable; try again when it is back", "warn");
  const err = e instanceof Error ? { name: e.name, code: (e as { code?: unknown }).code } : { name: typeof e };
  log.error({ rpc, ...ids, err }, "request failed");
  return new ConnectError("internal error", Code.Internal);
}

function text(field: string, value: string, max: number): string {
  if (value.length > max) throw new ConnectError(`${field} must be at most ${max} characters`, Code.InvalidArgument);
  if (value.includes("\0")) throw new ConnectError(`${field} must not contain NUL characters`, Code.InvalidArgument);
  return value;
}

function projectId(value: string): string {
  if (value.trim() === "") throw new ConnectError("project_id is required", Code.InvalidArgument);
  return text("project_id", value, MAX_ID_LENGTH);
}
