import { create, fromBinary, toBinary, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ArtifactService, DownloadRequestSchema, DownloadResponseSchema, UploadResponseSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import type { DirectCall } from "@flip/shared/direct/direct-call.js";
import type { DirectRoute } from "@flip/shared/direct/direct-routes.js";
import { joinParts, type MessageParts } from "@flip/shared/direct/envelope.js";
import { BufferPool } from "@flip/shared/files/buffer-pool.js";
import { InvalidInputError } from "../domain/errors.js";
import { decodeUploadRequest, downloadChunkHead, uploadInput, type UploadRequestPart } from "./chunk-codec.js";
import type { ArtifactDeps } from "./deps.js";
import { openDownload } from "./download.js";
import { rpcErrorOf } from "../rpc/to-connect-error.js";
import { authenticateTrustCaller } from "../trusts/trust-key-auth.js";
import { receiveUpload, type UploadInput } from "./upload.js";
import { validateArtifactId, validateBegin } from "./validate.js";

/**
 * Bytes per download read and message. Larger reads mean fewer trips to the disk thread pool and fewer
 * messages; 4 MiB keeps a message (and what a cut download re-fetches) far under the 16 MiB cap.
 */
const DOWNLOAD_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * ArtifactService's Upload and Download for gRPC binary callers (the gateway's client), served straight
 * on their HTTP/2 streams: chunk data stays in the buffers it arrived in, and download data goes out
 * beside a few encoded bytes of message head. Every other protocol reaches `handlers.ts`; both call the
 * same domain functions.
 */
export function artifactDirectRoutes(deps: ArtifactDeps): DirectRoute[] {
  const route = (method: DescMethod, serve: (deps: ArtifactDeps, call: DirectCall) => Promise<void>): DirectRoute => ({
    method,
    async handle(call) {
      try {
        await serve(deps, call);
      } catch (e) {
        throw rpcErrorOf(deps.log, `${method.parent.typeName}/${method.name}`, e);
      }
    },
  });
  return [route(ArtifactService.method.upload, serveUpload), route(ArtifactService.method.download, serveDownload)];
}

async function serveUpload(deps: ArtifactDeps, call: DirectCall): Promise<void> {
  const trust = await authenticateTrustCaller(deps.db.em(), call.requestHeader, deps.log, "Upload");
  const first = await call.read();
  const begin = first === undefined ? undefined : decodeUploadMessage(first);
  if (begin?.case !== "begin") throw new InvalidInputError("begin", "the first message of an upload must carry begin");
  const plan = validateBegin(begin.value, deps.maxBytes);
  const outcome = await receiveUpload(deps, { trustId: trust.id, trustCode: trust.code }, plan, messagesAfterBegin(call));
  const response = create(UploadResponseSchema, { artifactId: outcome.artifactId, storedBytes: BigInt(outcome.storedBytes), complete: outcome.complete });
  call.send([toBinary(UploadResponseSchema, response)]);
}

async function* messagesAfterBegin(call: DirectCall): AsyncGenerator<UploadInput> {
  for (let m = await call.read(); m; m = await call.read()) yield uploadInput(decodeUploadMessage(m));
}

function decodeUploadMessage(parts: MessageParts): UploadRequestPart {
  try {
    return decodeUploadRequest(parts);
  } catch (e) {
    throw new ConnectError("the upload message is not a valid UploadRequest", Code.InvalidArgument, undefined, undefined, e);
  }
}

function decodeDownloadRequest(parts: MessageParts) {
  try {
    return fromBinary(DownloadRequestSchema, joinParts(parts));
  } catch (e) {
    throw new ConnectError("the request is not a valid DownloadRequest", Code.InvalidArgument, undefined, undefined, e);
  }
}

async function serveDownload(deps: ArtifactDeps, call: DirectCall): Promise<void> {
  const trust = await authenticateTrustCaller(deps.db.em(), call.requestHeader, deps.log, "Download");
  const first = await call.read();
  if (first === undefined) throw new ConnectError("a download needs its request message", Code.InvalidArgument);
  const req = decodeDownloadRequest(first);
  // One buffer being sent, one being read, one spare: the read buffers are reused, not allocated per chunk.
  const buffers = new BufferPool(DOWNLOAD_CHUNK_BYTES, 3);
  const reader = await openDownload(deps, trust.id, validateArtifactId(req.artifactId), req.offset, DOWNLOAD_CHUNK_BYTES, buffers);
  const sizeBytes = reader.artifact.sizeBytes;
  let offset = Number(req.offset);
  /** Sent chunks the stream may still hold; once it has drained, they are free again. */
  const sending: Uint8Array[] = [];
  // The store reads the next chunk while this one is sent; the stream's backpressure paces both.
  for await (const data of reader.chunks) {
    sending.push(data);
    if (!call.send([downloadChunkHead(offset, sizeBytes, data.length), data])) {
      await call.drained();
      // Aborted: the caller went away (nothing more can be sent) or the server is shutting down (the
      // caller hears why, and resumes from its partial file).
      if (call.signal.aborted) throw ConnectError.from(call.signal.reason, Code.Unavailable);
      for (const b of sending.splice(0)) buffers.give(b);
    }
    deps.metrics.artifactBytes("download", data.length);
    offset += data.length;
  }
  // A message of its own carries the checksum, so no chunk is held back to attach it.
  call.send([toBinary(DownloadResponseSchema, create(DownloadResponseSchema, { offset: BigInt(offset), sizeBytes: BigInt(sizeBytes), sha256: reader.sha256 }))]);
  deps.log.debug({ artifactId: reader.artifact.id, from: req.offset.toString() }, "artifact downloaded");
}
