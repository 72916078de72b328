/**
 * A PACS over DIMSE (dcmjs-dimse): C-FIND to find studies, C-GET or C-MOVE to retrieve them.
 *
 * dcmjs-dimse's Client hides its socket, so TCP_NODELAY cannot be set (measured against Orthanc: a
 * C-GET of 32 instances took 84 ms with Nagle's algorithm on our side, 42 ms without; a C-MOVE 132 and
 * 62 ms), and it parses every received data set into JavaScript objects. Its Scp is the same Network
 * class with both exposed, so the SCU here runs on an Scp subclass over a socket of our own, and
 * received instances stay the bytes that came over the wire, behind a Part-10 header.
 */
import { once } from "node:events";
import * as net from "node:net";
import { Writable } from "node:stream";
import dcmjs from "dcmjs";
import dimse from "dcmjs-dimse";
import type { association as dimseAssociation, requests, responses } from "dcmjs-dimse";
import type { Logger } from "@flip/shared/logging/logger.js";
import { callerAbort, checkStudyUid, PacsRequestError, PacsUnavailableError, type PacsClient, type PacsStudy, type RetrievedStudy } from "./pacs.js";

const { Scp, Dataset, Implementation } = dimse;
const { Association } = dimse.association;
const { CFindRequest, CGetRequest, CMoveRequest } = dimse.requests;
const { CStoreResponse, CEchoResponse } = dimse.responses;
const { Status, TransferSyntax, StorageClass, PresentationContextResult, RejectResult } = dimse.constants;

type Request = requests.Request;
type Response = responses.Response;
type CStoreRequest = requests.CStoreRequest;
type PresentationContext = dimseAssociation.PresentationContext;
type Association = dimseAssociation.Association;

// Every failure reaches the caller as a typed error; the library's own console logging adds nothing.
dimse.log.setLevel("silent");

export interface DimsePacsOptions {
  host: string;
  port: number;
  /** The PACS's AET. */
  calledAet: string;
  /** Ours; for C-MOVE the PACS must know it as a destination at this host and `storePort`. */
  callingAet: string;
  retrieve: "get" | "move";
  /** C-MOVE only: where our store SCP listens (all interfaces; the PACS connects to it). */
  storePort?: number;
  /** Longest silence of the PACS within an association, and for connecting (default 60 s). */
  timeoutMs?: number;
  log?: Logger;
}

/** A PACS client speaking C-FIND and C-GET or C-MOVE. */
export function dimsePacs(opts: DimsePacsOptions): PacsClient {
  return new DimsePacs(opts);
}

const UNCOMPRESSED = [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian];
/** Offered for received instances too, so that compressed images arrive as stored, not decompressed. */
const STORAGE_SYNTAXES = [
  ...UNCOMPRESSED,
  TransferSyntax.DeflatedExplicitVRLittleEndian,
  TransferSyntax.JpegLossless,
  TransferSyntax.JpegLsLossless,
  TransferSyntax.Jpeg2000Lossless,
  TransferSyntax.RleLossless,
  TransferSyntax.JpegBaseline,
  TransferSyntax.JpegLsLossy,
  TransferSyntax.Jpeg2000Lossy,
];
const STORE_FAILED = 0xa700; // Out of resources: the PACS counts the sub-operation as failed.
const MOVE_DESTINATION_UNKNOWN = 0xa801;

// --- Part-10 files from received C-STORE data sets ---------------------------------------------------

class ChunkCollector extends Writable {
  readonly chunks: Buffer[] = [];
  length = 0;
  constructor() {
    // Never "full": the library handles PDUs in async handlers it does not await, so waiting for a
    // drain would let the next PDU overtake this one.
    super({ highWaterMark: 2 ** 30 });
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    callback();
  }
}

type Dataset = InstanceType<typeof Dataset>;
const receivedBytes = new WeakMap<Dataset, Buffer>();

function metaElement(tag: number, vr: string, value: Buffer): Buffer {
  const long = vr === "OB";
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(0x0002, 0);
  head.writeUInt16LE(tag, 2);
  head.write(vr, 4, "latin1");
  if (long) head.writeUInt32LE(value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

function metaString(value: string, pad: "\0" | " "): Buffer {
  return Buffer.from(value.length % 2 ? value + pad : value, "latin1");
}

/** Preamble, "DICM" and the file meta group (explicit VR little endian), then the data set as received. */
function part10File(dataset: Uint8Array, sopClassUid: string, sopInstanceUid: string, transferSyntaxUid: string, sourceAet: string): Buffer {
  const elements = Buffer.concat([
    metaElement(0x0001, "OB", Buffer.from([0, 1])),
    metaElement(0x0002, "UI", metaString(sopClassUid, "\0")),
    metaElement(0x0003, "UI", metaString(sopInstanceUid, "\0")),
    metaElement(0x0010, "UI", metaString(transferSyntaxUid, "\0")),
    metaElement(0x0012, "UI", metaString(Implementation.getImplementationClassUid(), "\0")),
    metaElement(0x0013, "SH", metaString(Implementation.getImplementationVersion().slice(0, 16), " ")),
    ...(sourceAet ? [metaElement(0x0016, "AE", metaString(sourceAet.slice(0, 16), " "))] : []),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(elements.length);
  const preamble = Buffer.alloc(132);
  preamble.write("DICM", 128, "latin1");
  return Buffer.concat([preamble, metaElement(0x0000, "UL", groupLength), elements, dataset]);
}

/** One association's dcmjs-dimse network that keeps received C-STORE data sets unparsed. */
class Part10Network extends Scp {
  protected peerAet = "";

  override createStoreWritableStream(): Writable {
    return new ChunkCollector();
  }

  override createDatasetFromStoreWritableStream(writable: Writable, context: PresentationContext, callback: (dataset: Dataset) => void): void {
    const collector = writable as ChunkCollector;
    // A placeholder for the library; the bytes stay as they came.
    const dataset = new Dataset({}, context.getAcceptedTransferSyntaxUid());
    receivedBytes.set(dataset, Buffer.concat(collector.chunks, collector.length));
    callback(dataset);
  }

  protected part10Of(request: CStoreRequest): Buffer {
    const dataset = request.getDataset()!;
    const bytes = receivedBytes.get(dataset);
    if (!bytes) throw new Error("C-STORE data set was not captured");
    receivedBytes.delete(dataset);
    return part10File(bytes, request.getAffectedSopClassUid(), request.getAffectedSopInstanceUid(), dataset.getTransferSyntaxUid(), this.peerAet);
  }

  protected storeResponse(request: CStoreRequest, status: number): responses.CStoreResponse {
    const response = CStoreResponse.fromRequest(request);
    response.setStatus(status);
    return response;
  }
}

// --- The SCU side: one association per operation ---------------------------------------------------

interface Target {
  host: string;
  port: number;
  callingAet: string;
  calledAet: string;
  timeoutMs: number;
  description: string;
}

interface Exchange {
  request: Request;
  /** What the operation is, for messages ("C-FIND", "C-GET of study …"). */
  what: string;
  /** Adds the presentation contexts the request needs. */
  contexts(association: Association): void;
  /** Instances arriving on this association (C-GET). */
  onStore?: (part10: Buffer) => Promise<void>;
  onResponse?: (response: Response) => void;
  /** Added to the message when the PACS aborts. */
  abortHint?: string;
  signal?: AbortSignal;
}

class ScuNetwork extends Part10Network {
  onStore: ((part10: Buffer, respond: (status: number) => void) => void) | undefined;
  onAbort: (() => void) | undefined;

  override cStoreRequest(request: CStoreRequest, callback: (response: responses.CStoreResponse) => void): void {
    if (!this.onStore) {
      callback(this.storeResponse(request, STORE_FAILED));
      return;
    }
    this.onStore(this.part10Of(request), (status) => callback(this.storeResponse(request, status)));
  }

  override associationReleaseRequested(): void {
    this.sendAssociationReleaseResponse();
  }

  override abort(): void {
    this.onAbort?.();
  }

  setPeerAet(aet: string): void {
    this.peerAet = aet;
  }
}

/** Connects, negotiates, sends one request, waits for its final response, releases. */
async function exchange(target: Target, x: Exchange): Promise<Response> {
  const aborted = callerAbort(x.signal);
  if (aborted !== undefined) throw aborted;
  const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
  const network = new ScuNetwork(socket, {
    connectTimeout: target.timeoutMs,
    associationTimeout: target.timeoutMs,
    pduTimeout: target.timeoutMs,
  });
  network.setPeerAet(target.calledAet);
  const association = new Association(target.callingAet, target.calledAet);
  x.contexts(association);
  const where = `${target.description}: ${x.what}`;

  return await new Promise<Response>((resolve, reject) => {
    let final: Response | undefined;
    let associated = false;
    let settled = false;
    const onCallerAbort = () => fail(callerAbort(x.signal));
    x.signal?.addEventListener("abort", onCallerAbort, { once: true });
    const settle = () => {
      settled = true;
      x.signal?.removeEventListener("abort", onCallerAbort);
    };
    const fail = (err: unknown) => {
      if (settled) return;
      settle();
      if (associated) {
        network.sendAbort();
        socket.end();
        setTimeout(() => socket.destroy(), 1_000).unref();
      } else {
        socket.destroy();
      }
      reject(err);
    };

    network.on("connect", () => network.sendAssociationRequest(association));
    network.on("associationAccepted", () => {
      associated = true;
      if (!association.getAcceptedPresentationContextFromRequest(x.request)) {
        fail(new PacsRequestError(`${where}: the PACS accepted the association but not this service (presentation context rejected)`));
        return;
      }
      network.sendRequests(x.request);
    });
    network.on("associationRejected", (reject: { result: number; reason: number }) => {
      const transient = reject.result === RejectResult.Transient;
      const message = `${where}: the PACS rejected the association (result ${reject.result}, reason ${reject.reason})`;
      fail(
        transient
          ? new PacsUnavailableError(`${message}; it asked to try again later`)
          : new PacsRequestError(`${message}: check that it knows calling AET ${target.callingAet} and is called ${target.calledAet}`),
      );
    });
    x.request.on("response", (response: Response) => {
      x.onResponse?.(response);
      if (response.getStatus() !== Status.Pending) final = response;
    });
    network.on("done", () => network.sendAssociationReleaseRequest());
    network.on("associationReleaseResponse", () => {
      if (settled) return;
      settle();
      socket.end();
      if (final) resolve(final);
      else reject(new PacsUnavailableError(`${where}: the PACS released the association without a final answer`));
    });
    network.onAbort = () => fail(new PacsUnavailableError(`${where}: the PACS aborted the association${x.abortHint ? ` (${x.abortHint})` : ""}`));
    network.on("networkError", (err: Error) => fail(new PacsUnavailableError(`${where}: ${err.message.replace(/^.*?-> /, "")}`, { cause: err })));
    network.on("close", () => fail(new PacsUnavailableError(`${where}: the connection closed before the operation finished`)));
    if (x.onStore) {
      const onStore = x.onStore;
      network.onStore = (part10, respond) => {
        onStore(part10).then(
          () => respond(Status.Success),
          (err: unknown) => fail(err),
        );
      };
    }
  });
}

function statusHex(status: number): string {
  return "0x" + status.toString(16).padStart(4, "0");
}

function textOf(value: unknown): string {
  if (Array.isArray(value)) return value.map(textOf).join("\\");
  return value === undefined || value === null ? "" : String(value);
}

// --- C-MOVE destination: our store SCP --------------------------------------------------------------

interface MoveRoute {
  onInstance(part10: Buffer, sopInstanceUid: string): Promise<void>;
  fail(err: unknown): void;
}

/** Receives the instances a PACS sends for our C-MOVEs and hands each to the move of its study. */
class StoreScpServer {
  readonly #routes = new Map<string, MoveRoute>();
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #log: Logger | undefined;

  constructor(timeoutMs: number, log: Logger | undefined) {
    this.#log = log;
    const routes = this.#routes;
    class StoreScp extends Part10Network {
      override associationRequested(association: Association): void {
        this.peerAet = association.getCallingAeTitle();
        // Only instances of a study being moved are kept (see cStoreRequest), so any context is accepted.
        for (const { context } of association.getPresentationContexts()) {
          const syntax = context.getTransferSyntaxUids()[0];
          if (syntax) context.setResult(PresentationContextResult.Accept, syntax);
          else context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
        }
        this.sendAssociationAccept();
      }

      override associationReleaseRequested(): void {
        this.sendAssociationReleaseResponse();
      }

      override cEchoRequest(request: requests.CEchoRequest, callback: (response: responses.CEchoResponse) => void): void {
        const response = CEchoResponse.fromRequest(request);
        response.setStatus(Status.Success);
        callback(response);
      }

      override cStoreRequest(request: CStoreRequest, callback: (response: responses.CStoreResponse) => void): void {
        const part10 = this.part10Of(request);
        const study = studyUidOf(part10);
        const route = study === undefined ? undefined : routes.get(study);
        if (!route) {
          log?.warn({ peerAet: this.peerAet }, "C-STORE for a study that is not being moved: refused");
          callback(this.storeResponse(request, STORE_FAILED));
          return;
        }
        route.onInstance(part10, request.getAffectedSopInstanceUid()).then(
          () => callback(this.storeResponse(request, Status.Success)),
          (err: unknown) => {
            callback(this.storeResponse(request, STORE_FAILED));
            route.fail(err);
          },
        );
      }

      override abort(): void {}
    }
    this.#server = net.createServer({ noDelay: true }, (socket) => {
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
      const scp = new StoreScp(socket, { connectTimeout: timeoutMs, associationTimeout: timeoutMs, pduTimeout: timeoutMs });
      scp.on("networkError", (err: Error) => {
        log?.debug({ err: err.message }, "store SCP connection error");
        socket.destroy();
      });
    });
  }

  async listen(port: number): Promise<void> {
    this.#server.listen(port);
    await once(this.#server, "listening");
    this.#log?.debug({ port }, "C-MOVE store SCP listening");
  }

  get port(): number | undefined {
    return (this.#server.address() as net.AddressInfo | null)?.port;
  }

  route(studyUid: string, route: MoveRoute): () => void {
    this.#routes.set(studyUid, route);
    return () => this.#routes.delete(studyUid);
  }

  async close(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = once(this.#server, "close");
    this.#server.close();
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}

function studyUidOf(part10: Buffer): string | undefined {
  try {
    const ab = part10.buffer.slice(part10.byteOffset, part10.byteOffset + part10.byteLength) as ArrayBuffer;
    const file = dcmjs.data.DicomMessage.readFile(ab, { untilTag: "0020000D", includeUntilTagValue: true, ignoreErrors: true });
    const value = file.dict["0020000D"]?.Value?.[0];
    return typeof value === "string" ? value.replace(/\0+$/, "").trim() : undefined;
  } catch {
    return undefined;
  }
}

// --- The client -------------------------------------------------------------------------------------

class DimsePacs implements PacsClient {
  readonly description: string;
  readonly #target: Target;
  readonly #opts: DimsePacsOptions;
  #store: Promise<StoreScpServer> | undefined;
  /** Moves of one study run one after another: their instances are told apart by study only. */
  readonly #movesInFlight = new Map<string, Promise<unknown>>();

  constructor(opts: DimsePacsOptions) {
    if (opts.retrieve === "move" && opts.storePort === undefined) {
      throw new PacsRequestError(`dimse ${opts.calledAet}@${opts.host}:${opts.port}: C-MOVE needs storePort, where the PACS sends the instances`);
    }
    this.#opts = opts;
    this.description = `dimse ${opts.calledAet}@${opts.host}:${opts.port} (${opts.retrieve === "get" ? "C-GET" : "C-MOVE"})`;
    this.#target = {
      host: opts.host,
      port: opts.port,
      callingAet: opts.callingAet,
      calledAet: opts.calledAet,
      timeoutMs: opts.timeoutMs ?? 60_000,
      description: this.description,
    };
  }

  async findByAccession(accession: string, signal?: AbortSignal): Promise<PacsStudy[]> {
    const request = new CFindRequest();
    // Only what we need: no patient attributes are asked for.
    request.setDataset(
      new Dataset({
        QueryRetrieveLevel: "STUDY",
        AccessionNumber: accession,
        StudyInstanceUID: "",
        ModalitiesInStudy: "",
        NumberOfStudyRelatedSeries: "",
        NumberOfStudyRelatedInstances: "",
      }),
    );
    const found: PacsStudy[] = [];
    const final = await exchange(this.#target, {
      request,
      what: "C-FIND",
      contexts: (a) => a.addPresentationContextFromRequest(request, UNCOMPRESSED),
      onResponse: (response) => {
        const ds = response.getDataset();
        if (response.getStatus() !== Status.Pending || !ds) return;
        found.push({
          studyInstanceUid: textOf(ds.getElement("StudyInstanceUID")),
          accessionNumber: textOf(ds.getElement("AccessionNumber")),
          modality: textOf(ds.getElement("ModalitiesInStudy")),
          seriesCount: Number(ds.getElement("NumberOfStudyRelatedSeries") ?? 0) || 0,
          instanceCount: Number(ds.getElement("NumberOfStudyRelatedInstances") ?? 0) || 0,
        });
      },
      signal,
    });
    if (final.getStatus() !== Status.Success) {
      throw new PacsRequestError(`${this.description}: C-FIND failed with status ${statusHex(final.getStatus())}${comment(final)}`);
    }
    // Wildcards in the accession, or a PACS that matches loosely: keep exact matches only.
    return found.filter((s) => s.accessionNumber === accession && s.studyInstanceUid !== "");
  }

  async retrieveStudy(studyInstanceUid: string, onInstance: (part10: Uint8Array) => Promise<void>, signal?: AbortSignal): Promise<RetrievedStudy> {
    checkStudyUid(this.description, studyInstanceUid);
    return this.#opts.retrieve === "get" ? await this.#get(studyInstanceUid, onInstance, signal) : await this.#move(studyInstanceUid, onInstance, signal);
  }

  async close(): Promise<void> {
    const store = this.#store;
    this.#store = undefined;
    if (store) await (await store.catch(() => undefined))?.close();
  }

  async #get(studyUid: string, onInstance: (part10: Uint8Array) => Promise<void>, signal: AbortSignal | undefined): Promise<RetrievedStudy> {
    const request = CGetRequest.createStudyGetRequest(studyUid);
    let instances = 0;
    let bytes = 0;
    const what = `C-GET of study ${studyUid}`;
    const final = await exchange(this.#target, {
      request,
      what,
      contexts: (a) => {
        // The C-GET context, and every storage class with the SCP role for the instances that come back.
        request.setAddStorageSopClassesToAssociation(true);
        a.addPresentationContextFromRequest(request, UNCOMPRESSED);
        for (const { id, context } of a.getPresentationContexts()) {
          if (!Object.values(StorageClass).includes(context.getAbstractSyntaxUid())) continue;
          for (const syntax of STORAGE_SYNTAXES) if (!context.hasTransferSyntaxUid(syntax)) a.addTransferSyntaxToPresentationContext(id, syntax);
        }
      },
      onStore: async (part10) => {
        instances++;
        bytes += part10.byteLength;
        await onInstance(part10);
      },
      signal,
    });
    this.#checkRetrieve(final, what, instances);
    return { instances, bytes };
  }

  async #move(studyUid: string, onInstance: (part10: Uint8Array) => Promise<void>, signal: AbortSignal | undefined): Promise<RetrievedStudy> {
    const store = await this.#storeServer();
    const before = this.#movesInFlight.get(studyUid);
    const run = (async () => {
      await before?.catch(() => undefined);
      return await this.#moveNow(store, studyUid, onInstance, signal);
    })();
    this.#movesInFlight.set(studyUid, run);
    try {
      return await run;
    } finally {
      if (this.#movesInFlight.get(studyUid) === run) this.#movesInFlight.delete(studyUid);
    }
  }

  async #moveNow(store: StoreScpServer, studyUid: string, onInstance: (part10: Uint8Array) => Promise<void>, signal: AbortSignal | undefined): Promise<RetrievedStudy> {
    const { callingAet } = this.#opts;
    const request = CMoveRequest.createStudyMoveRequest(callingAet, studyUid);
    const what = `C-MOVE of study ${studyUid} to ${callingAet}`;
    const hint = `it may not know ${callingAet} as a move destination (this host, port ${store.port})`;
    let instances = 0;
    let bytes = 0;
    const stopped = new AbortController();
    let handlerError: { err: unknown } | undefined;
    // A move aborted a moment ago may still deliver an instance or two: each is handed over once.
    const seen = new Set<string>();
    const unroute = store.route(studyUid, {
      onInstance: async (part10, sopInstanceUid) => {
        if (seen.has(sopInstanceUid)) return;
        seen.add(sopInstanceUid);
        instances++;
        bytes += part10.byteLength;
        await onInstance(part10);
      },
      fail: (err) => {
        handlerError ??= { err };
        stopped.abort(err);
      },
    });
    try {
      const final = await exchange(this.#target, {
        request,
        what,
        contexts: (a) => a.addPresentationContextFromRequest(request, UNCOMPRESSED),
        abortHint: hint,
        signal: signal ? AbortSignal.any([signal, stopped.signal]) : stopped.signal,
      });
      if (handlerError) throw handlerError.err;
      if (final.getStatus() === MOVE_DESTINATION_UNKNOWN) {
        throw new PacsRequestError(`${this.description}: the PACS does not know move destination ${callingAet}: add it to the PACS's modalities (this host, port ${store.port})`);
      }
      this.#checkRetrieve(final, what, instances, hint);
      return { instances, bytes };
    } catch (e) {
      if (handlerError) throw handlerError.err;
      throw e;
    } finally {
      unroute();
    }
  }

  /** Throws unless the final C-GET/C-MOVE answer says every instance came. `hint`: a likely cause besides a missing study. */
  #checkRetrieve(final: Response, what: string, received: number, hint?: string): void {
    const counts = final as responses.CGetResponse;
    const failures = counts.getFailures?.() ?? 0;
    const status = final.getStatus();
    if (status === Status.Success && failures === 0) {
      if (received === 0) throw new PacsRequestError(`${this.description}: ${what}: the PACS has no instances of this study`);
      return;
    }
    const completed = counts.getCompleted?.() ?? 0;
    const detail = `status ${statusHex(status)}, ${completed} completed, ${failures} failed${comment(final)}`;
    if ((status & 0xf000) === 0xc000 || status === Status.NotAuthorized) {
      throw new PacsRequestError(`${this.description}: ${what} was refused (${detail}): the PACS may not have this study${hint ? `, or ${hint}` : ""}`);
    }
    throw new PacsUnavailableError(`${this.description}: ${what} did not deliver every instance (${detail}); try again later${hint ? ` (if it keeps failing: ${hint})` : ""}`);
  }

  async #storeServer(): Promise<StoreScpServer> {
    this.#store ??= (async () => {
      const server = new StoreScpServer(this.#target.timeoutMs, this.#opts.log);
      try {
        await server.listen(this.#opts.storePort!);
      } catch (e) {
        this.#store = undefined;
        throw new PacsRequestError(`${this.description}: cannot listen on store port ${this.#opts.storePort} for C-MOVE: ${(e as Error).message}`, { cause: e });
      }
      return server;
    })();
    return await this.#store;
  }
}

function comment(response: Response): string {
  const text = response.getErrorComment?.();
  return text ? `: ${text}` : "";
}
