import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { ArtifactService, type UploadRequest } from "@flip/gen/flip/link/v1/link_pb.js";
import { InvalidInputError } from "../domain/errors.js";
import { uploadInput } from "./chunk-codec.js";
import type { ArtifactDeps } from "./deps.js";
import { openDownload, type ArtifactReader } from "./download.js";
import { rpcErrorOf } from "../rpc/to-connect-error.js";
import { authenticateTrustCaller } from "../trusts/trust-key-auth.js";
import { receiveUpload, type UploadInput } from "./upload.js";
import { getUploadStatus } from "./upload-status.js";
import { validateArtifactId, validateBegin } from "./validate.js";

/** flip.link.v1.ArtifactService: thin handlers over the artifact domain (upload.ts, upload-status.ts, download.ts). */
export function registerArtifactHandlers(router: ConnectRouter, deps: ArtifactDeps): void {
  const { db, log } = deps;
  const mapped = (ctx: HandlerContext, e: unknown) => rpcErrorOf(log, `${ctx.service.typeName}/${ctx.method.name}`, e);

  router.service(ArtifactService, {
    async upload(requests, ctx) {
      try {
        const trust = await authenticateTrustCaller(db.em(), ctx.requestHeader, log, "Upload");
        const it = requests[Symbol.asyncIterator]();
        const first = await nextMessage(it);
        if (first.done || first.value.part.case !== "begin") throw new InvalidInputError("begin", "the first message of an upload must carry begin");
        const plan = validateBegin(first.value.part.value, deps.maxBytes);
        const outcome = await receiveUpload(deps, { trustId: trust.id, trustCode: trust.code }, plan, messagesAfterBegin(it));
        return { artifactId: outcome.artifactId, storedBytes: BigInt(outcome.storedBytes), complete: outcome.complete };
      } catch (e) {
        throw mapped(ctx, e);
      }
    },

    async getUploadStatus(req, ctx) {
      try {
        const trust = await authenticateTrustCaller(db.em(), ctx.requestHeader, log, "GetUploadStatus");
        const s = await getUploadStatus(db.em(), trust.id, validateArtifactId(req.artifactId));
        return { artifactId: s.artifactId, storedBytes: BigInt(s.storedBytes), sizeBytes: BigInt(s.sizeBytes), complete: s.complete };
      } catch (e) {
        throw mapped(ctx, e);
      }
    },

    async *download(req, ctx) {
      let reader: ArtifactReader;
      try {
        const trust = await authenticateTrustCaller(db.em(), ctx.requestHeader, log, "Download");
        reader = await openDownload(deps, trust.id, validateArtifactId(req.artifactId), req.offset);
      } catch (e) {
        throw mapped(ctx, e);
      }
      const { artifact } = reader;
      const sizeBytes = BigInt(artifact.sizeBytes);
      const chunks = reader.chunks[Symbol.asyncIterator]();
      let offset = req.offset;
      try {
        for (;;) {
          let r: IteratorResult<Uint8Array>;
          try {
            r = await chunks.next();
          } catch (e) {
            throw mapped(ctx, e);
          }
          if (r.done) break;
          // A throw from this yield is the client going away; it ends the stream and needs no error log.
          yield { offset, data: r.value, sizeBytes };
          deps.metrics.artifactBytes("download", r.value.length);
          offset += BigInt(r.value.length);
        }
      } finally {
        await chunks.return?.();
      }
      // A message of its own carries the checksum, so no chunk is held back to attach it.
      yield { offset, sizeBytes, sha256: reader.sha256 };
      log.debug({ artifactId: artifact.id, from: req.offset.toString() }, "artifact downloaded");
    },
  });
}

/**
 * The next message of an upload stream. A stream that breaks (the client went away) ends as Aborted, which
 * the client resumes from and which is no hub error; errors Connect raised itself (e.g. an oversized
 * message) keep their code.
 */
async function nextMessage(it: AsyncIterator<UploadRequest>): Promise<IteratorResult<UploadRequest>> {
  try {
    return await it.next();
  } catch (e) {
    if (e instanceof ConnectError) throw e;
    throw new ConnectError("the upload stream broke; resume from GetUploadStatus", Code.Aborted, undefined, undefined, e);
  }
}

/** The chunk and finish messages after `begin`; anything else is a malformed stream. */
async function* messagesAfterBegin(it: AsyncIterator<UploadRequest>): AsyncGenerator<UploadInput> {
  for (let r = await nextMessage(it); !r.done; r = await nextMessage(it)) yield uploadInput(r.value.part);
}
