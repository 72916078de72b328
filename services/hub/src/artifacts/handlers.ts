import { Code, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { ArtifactService, type UploadRequest } from "@flip/gen/flip/link/v1/link_pb.js";
import { InvalidInputError } from "../rpc/domain-errors.js";
import type { ArtifactDeps } from "./deps.js";
import { openDownload } from "./download.js";
import { artifactErrorToConnect } from "./to-connect-error.js";
import { authenticateTrust } from "./trust-auth.js";
import { receiveUpload, type UploadChunkInput } from "./upload.js";
import { getUploadStatus } from "./upload-status.js";
import { validateArtifactId, validateBegin } from "./validate.js";

/** flip.link.v1.ArtifactService: thin handlers over the artifact domain (upload.ts, upload-status.ts, download.ts). */
export function registerArtifactHandlers(router: ConnectRouter, deps: ArtifactDeps): void {
  const { db, log } = deps;
  /** Maps errors to codes; only unexpected ones are logged, since the rest are the caller's business. */
  const mapped = (ctx: HandlerContext, e: unknown) => {
    const err = artifactErrorToConnect(e);
    if (err.code === Code.Internal) log.error({ err: e, rpc: ctx.method.name }, "unexpected error in artifact handler");
    return err;
  };

  router.service(ArtifactService, {
    async upload(requests, ctx) {
      try {
        const trust = await authenticateTrust(db, ctx.requestHeader, log, "Upload");
        const it = requests[Symbol.asyncIterator]();
        const first = await it.next();
        if (first.done || first.value.part.case !== "begin") throw new InvalidInputError("begin", "the first message of an upload must carry begin");
        const plan = validateBegin(first.value.part.value, deps.maxBytes);
        const outcome = await receiveUpload(deps, { trustId: trust.id, trustCode: trust.code }, plan, chunksAfterBegin(it));
        return { artifactId: outcome.artifactId, storedBytes: BigInt(outcome.storedBytes), complete: outcome.complete };
      } catch (e) {
        throw mapped(ctx, e);
      }
    },

    async getUploadStatus(req, ctx) {
      try {
        const trust = await authenticateTrust(db, ctx.requestHeader, log, "GetUploadStatus");
        const s = await getUploadStatus(db.em(), trust.id, validateArtifactId(req.artifactId));
        return { artifactId: s.artifactId, storedBytes: BigInt(s.storedBytes), sizeBytes: BigInt(s.sizeBytes), complete: s.complete };
      } catch (e) {
        throw mapped(ctx, e);
      }
    },

    async *download(req, ctx) {
      try {
        const trust = await authenticateTrust(db, ctx.requestHeader, log, "Download");
        const { artifact, chunks } = await openDownload(deps, trust.id, validateArtifactId(req.artifactId), req.offset);
        const sizeBytes = BigInt(artifact.sizeBytes);
        let offset = req.offset;
        for await (const data of chunks) {
          yield { offset, data, sizeBytes };
          offset += BigInt(data.length);
        }
        // A message of its own carries the checksum, so no chunk is held back to attach it.
        yield { offset, sizeBytes, sha256: artifact.sha256 };
        log.debug({ artifactId: artifact.id, trustId: trust.id, from: req.offset.toString() }, "artifact downloaded");
      } catch (e) {
        throw mapped(ctx, e);
      }
    },
  });
}

/** The chunk messages after `begin`; anything else is a malformed stream. */
async function* chunksAfterBegin(it: AsyncIterator<UploadRequest>): AsyncGenerator<UploadChunkInput> {
  for (let r = await it.next(); !r.done; r = await it.next()) {
    const part = r.value.part;
    if (part.case === "chunk") yield part.value;
    else if (part.case === "begin") throw new InvalidInputError("begin", "only the first message of an upload may carry begin");
    else throw new InvalidInputError("chunk", "every message after begin must carry a chunk");
  }
}
