import type * as http2 from "node:http2";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  ArtifactService,
  DownloadRequestSchema,
  GetUploadStatusRequestSchema,
  GetUploadStatusResponseSchema,
  UploadRequestSchema,
  UploadResponseSchema,
  type GetUploadStatusResponse,
  type UploadBeginSchema,
  type UploadResponse,
} from "@flip/gen/flip/link/v1/link_pb.js";
import { joinParts } from "@flip/shared/direct/envelope.js";
import { decodeDownloadResponse, uploadChunkHead, type DownloadPiece } from "./chunk-codec.js";
import type { ClientCall } from "@flip/shared/direct/client-call.js";
import { ClientSession } from "@flip/shared/direct/client-session.js";

export interface ArtifactClientOptions {
  /** The hub's base URL, e.g. https://hub.example.org. */
  baseUrl: string;
  apiKey: string;
  /** TLS and socket options for the HTTP/2 session (e.g. `ca` for a private CA). */
  nodeOptions?: http2.SecureClientSessionOptions;
}

export interface CallOptions {
  /** Cancels the call; it then fails with Canceled. */
  signal?: AbortSignal;
}

/** One Upload stream: `begin`, chunks, then (when begin named no checksum) `finish`, then the hub's answer. */
export interface UploadCall {
  begin(value: MessageInitShape<typeof UploadBeginSchema>): Promise<void>;
  /**
   * Sends `data` at `offset` as it is (no copy); resolves once the stream can take more. `written` is
   * called once the stream no longer holds `data`, which may then be reused.
   */
  chunk(offset: number, data: Uint8Array, written?: () => void): Promise<void>;
  finish(sha256: string): Promise<void>;
  /** Ends the request stream and waits for the hub's answer. */
  response(): Promise<UploadResponse>;
  /** Abandons the call, if it has not ended. */
  cancel(): void;
}

/**
 * flip.link.v1.ArtifactService as the gateway calls it. Failures reject with a ConnectError carrying the
 * hub's code (or the code of a broken connection: see `classify` in retry.ts).
 */
export interface ArtifactClient {
  getUploadStatus(req: { artifactId: string }, opts?: CallOptions): Promise<GetUploadStatusResponse>;
  upload(opts?: CallOptions): UploadCall;
  /** The artifact's chunks from `offset`, then a last message with its checksum. */
  download(req: { artifactId: string; offset: number }, opts?: CallOptions): AsyncIterable<DownloadPiece>;
  /** Closes the connection once calls in progress end. An idle client does not keep the process alive either way. */
  close(): void;
}

/** The hub reads messages up to this size; its download chunks are far smaller. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * An ArtifactService client on an HTTP/2 connection of its own (large transfers never share the control
 * stream's connection), speaking gRPC directly on its streams: chunk data goes out and comes in without
 * the copies a generic client makes per message. Any gRPC server of the service can answer it. The trust
 * API key goes in `Authorization: Bearer`, and each call carries the active W3C trace context.
 */
export function createArtifactClient(opts: ArtifactClientOptions): ArtifactClient {
  const session = new ClientSession({ baseUrl: opts.baseUrl, bearerToken: opts.apiKey, nodeOptions: opts.nodeOptions, maxMessageBytes: MAX_MESSAGE_BYTES });
  return {
    async getUploadStatus(req, callOpts) {
      const call = session.call(ArtifactService.method.getUploadStatus, callOpts?.signal);
      await call.send([toBinary(GetUploadStatusRequestSchema, create(GetUploadStatusRequestSchema, req))]);
      call.endRequest();
      return await onlyResponse(call, GetUploadStatusResponseSchema);
    },

    upload(callOpts) {
      const call = session.call(ArtifactService.method.upload, callOpts?.signal);
      const send = (part: MessageInitShape<typeof UploadRequestSchema>["part"]) => call.send([toBinary(UploadRequestSchema, create(UploadRequestSchema, { part }))]);
      return {
        begin: (value) => send({ case: "begin", value }),
        chunk: (offset, data, written) => call.send([uploadChunkHead(offset, data.length), data], written),
        finish: (sha256) => send({ case: "finish", value: { sha256 } }),
        async response() {
          call.endRequest();
          return await onlyResponse(call, UploadResponseSchema);
        },
        cancel: () => call.cancel(),
      };
    },

    async *download(req, callOpts) {
      const call = session.call(ArtifactService.method.download, callOpts?.signal);
      try {
        await call.send([toBinary(DownloadRequestSchema, create(DownloadRequestSchema, { artifactId: req.artifactId, offset: BigInt(req.offset) }))]);
        call.endRequest();
        for (let m = await call.read(); m; m = await call.read()) yield decodeDownloadResponse(m);
      } finally {
        // A consumer that stops early cancels the stream; after the status this does nothing.
        call.cancel();
      }
    },

    close: () => session.close(),
  };
}

/** The single response message of a unary or client-streaming call, once its OK status arrived. */
async function onlyResponse<S extends DescMessage>(call: ClientCall, schema: S): Promise<MessageShape<S>> {
  const first = await call.read();
  if (first === undefined) throw new ConnectError("protocol error: the call ended without its response message", Code.Internal);
  const message = fromBinary(schema, joinParts(first));
  if ((await call.read()) !== undefined) throw new ConnectError("protocol error: more than one response message", Code.Internal);
  return message;
}
