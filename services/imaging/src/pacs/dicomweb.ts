/**
 * A PACS over DICOMweb: QIDO-RS to find studies, WADO-RS to retrieve them, over node:http with
 * connections kept alive between requests (http/keep-alive.ts says why not fetch).
 */
import type * as http from "node:http";
import { requestOnce, shortKeepAliveAgent, StaleConnection } from "../http/keep-alive.js";
import { boundaryOf, MultipartError, multipartParts } from "./multipart.js";
import { callerAbort, checkStudyUid, PacsRequestError, PacsUnavailableError, type PacsClient, type PacsStudy, type RetrievedStudy } from "./pacs.js";

export type DicomWebAuth = { username: string; password: string } | { token: string };

export interface DicomWebPacsOptions {
  /** DICOMweb root, e.g. http://pacs:8042/dicom-web. */
  url: string;
  auth?: DicomWebAuth;
  /** Until an answer's headers arrive (default 30 s). */
  requestTimeoutMs?: number;
  /** The longest silence inside a study being retrieved (default 60 s). */
  idleTimeoutMs?: number;
}

const TAG = {
  studyInstanceUid: "0020000D",
  accessionNumber: "00080050",
  modalitiesInStudy: "00080061",
  seriesCount: "00201206",
  instanceCount: "00201208",
} as const;

type DicomJson = Record<string, { vr?: string; Value?: unknown[] } | undefined>;

/** A PACS client speaking QIDO-RS and WADO-RS. */
export function dicomWebPacs(opts: DicomWebPacsOptions): PacsClient {
  return new DicomWebPacs(opts);
}

/** Aborts a request when the caller does, or when the PACS is silent for too long. */
class Deadline {
  readonly #controller = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #timedOutAfterMs: number | undefined;
  readonly signal: AbortSignal;

  constructor(caller: AbortSignal | undefined, ms: number) {
    this.signal = caller ? AbortSignal.any([caller, this.#controller.signal]) : this.#controller.signal;
    this.arm(ms);
  }

  arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timedOutAfterMs = ms;
      this.#controller.abort(new Error(`no answer within ${ms / 1000} s`));
    }, ms);
  }

  /** No deadline while we, not the PACS, are busy. */
  pause(): void {
    clearTimeout(this.#timer);
  }

  get timedOutAfterMs(): number | undefined {
    return this.#timedOutAfterMs;
  }

  /** Ends the request (and its connection) when it was left unfinished. */
  done(): void {
    clearTimeout(this.#timer);
    if (!this.signal.aborted) this.#controller.abort(new Error("request finished"));
  }
}

/** An answer whose headers arrived. */
interface Answer {
  status: number;
  contentType: string;
  body: http.IncomingMessage;
}

async function readAll(body: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

class DicomWebPacs implements PacsClient {
  readonly description: string;
  readonly #url: URL;
  readonly #agent: http.Agent;
  readonly #base: string;
  readonly #authorization: string | undefined;
  readonly #requestTimeoutMs: number;
  readonly #idleTimeoutMs: number;

  constructor(opts: DicomWebPacsOptions) {
    const url = new URL(opts.url);
    url.username = "";
    url.password = "";
    this.#base = url.toString().replace(/\/+$/, "");
    this.#url = new URL(this.#base);
    this.#agent = shortKeepAliveAgent(url.protocol === "https:");
    this.description = `dicomweb ${this.#base}`;
    if (opts.auth && "token" in opts.auth) this.#authorization = `Bearer ${opts.auth.token}`;
    else if (opts.auth) this.#authorization = "Basic " + Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString("base64");
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  }

  async findByAccession(accession: string, signal?: AbortSignal): Promise<PacsStudy[]> {
    const query = new URLSearchParams({ AccessionNumber: accession });
    // Repeated, not comma-joined: Orthanc ignores an encoded comma silently.
    for (const tag of [TAG.modalitiesInStudy, TAG.seriesCount, TAG.instanceCount]) query.append("includefield", tag);
    const what = "QIDO-RS study search";
    const deadline = new Deadline(signal, this.#requestTimeoutMs);
    try {
      const res = await this.#get(`/studies?${query}`, "application/dicom+json", deadline, what);
      if (res.status === 204) {
        res.body.resume();
        return [];
      }
      // A connection cut while reading is a network failure (retried); only what arrived whole is parsed.
      const text = (await readAll(res.body)).toString("utf8");
      if (!res.body.complete) throw new PacsUnavailableError(`${this.description}: ${what}: the connection closed before the answer ended`);
      let answer: unknown;
      try {
        answer = JSON.parse(text);
      } catch (e) {
        if (deadline.signal.aborted) throw e;
        throw new PacsRequestError(`${this.description}: ${what} answered with invalid JSON`, { cause: e });
      }
      if (!Array.isArray(answer)) throw new PacsRequestError(`${this.description}: ${what} answered JSON that is not an array`);
      // QIDO-RS matches AccessionNumber ignoring case (and may expand wildcards): keep exact matches only.
      return answer.map((study) => this.#study(study as DicomJson)).filter((s) => s.accessionNumber === accession);
    } catch (e) {
      throw this.#failure(e, what, deadline, signal);
    } finally {
      deadline.done();
    }
  }

  async retrieveStudy(studyInstanceUid: string, onInstance: (part10: Uint8Array) => Promise<void>, signal?: AbortSignal): Promise<RetrievedStudy> {
    checkStudyUid(this.description, studyInstanceUid);
    const what = `WADO-RS retrieve of study ${studyInstanceUid}`;
    const deadline = new Deadline(signal, this.#requestTimeoutMs);
    let instances = 0;
    let bytes = 0;
    try {
      const res = await this.#get(`/studies/${studyInstanceUid}`, 'multipart/related; type="application/dicom"', deadline, what);
      const contentType = res.contentType;
      const boundary = /^multipart\/related\b/i.test(contentType) ? boundaryOf(contentType) : undefined;
      if (!boundary) {
        res.body.resume();
        throw new PacsRequestError(`${this.description}: ${what} answered ${JSON.stringify(contentType)}, not multipart/related with a boundary`);
      }
      const idle = this.#idleTimeoutMs;
      deadline.arm(idle);
      const body = res.body;
      const watched = (async function* () {
        for await (const chunk of body) {
          deadline.arm(idle);
          yield chunk as Buffer;
        }
        // A connection that ends before the body did is a cut, not a complete answer.
        if (!body.complete) throw new MultipartError("the connection closed before the answer ended", true);
      })();
      for await (const part of multipartParts(watched, boundary)) {
        if (!isPart10(part)) {
          throw new PacsRequestError(`${this.description}: part ${instances + 1} of ${what} is not a DICOM Part-10 file`);
        }
        instances++;
        bytes += part.byteLength;
        // The PACS waits (TCP flow control) while the instance is handled.
        deadline.pause();
        await onInstance(part);
        deadline.arm(idle);
      }
      return { instances, bytes };
    } catch (e) {
      throw this.#failure(e, what, deadline, signal);
    } finally {
      deadline.done();
    }
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }

  /** GET once, or twice when a kept-alive connection turns out to have been closed (GETs are idempotent). */
  async #get(path: string, accept: string, deadline: Deadline, what: string): Promise<Answer> {
    const headers: Record<string, string> = { accept };
    if (this.#authorization) headers.authorization = this.#authorization;
    const send = () => requestOnce(this.#url, { method: "GET", path, headers, agent: this.#agent, signal: deadline.signal });
    let message: http.IncomingMessage;
    try {
      message = await send();
    } catch (e) {
      if (!(e instanceof StaleConnection)) throw e;
      message = await send();
    }
    const res: Answer = { status: message.statusCode ?? 0, contentType: String(message.headers["content-type"] ?? ""), body: message };
    if (res.status >= 200 && res.status < 300) return res;
    const text = (await readAll(message).then((b) => b.toString("utf8")).catch(() => "")).slice(0, 200).replace(/\s+/g, " ").trim();
    const status = `HTTP ${res.status}${text ? ` (${text})` : ""}`;
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      throw new PacsUnavailableError(`${this.description}: ${what} answered ${status}; try again later`);
    }
    if (res.status === 401 || res.status === 403) {
      throw new PacsRequestError(`${this.description}: ${what} was refused (${status}): check the PACS username and password or token`);
    }
    if (res.status === 404) throw new PacsRequestError(`${this.description}: ${what}: not found (${status})`);
    throw new PacsRequestError(`${this.description}: ${what} answered ${status}`);
  }

  #study(json: DicomJson): PacsStudy {
    const studyInstanceUid = firstString(json, TAG.studyInstanceUid);
    if (!studyInstanceUid) throw new PacsRequestError(`${this.description}: a QIDO-RS answer has no StudyInstanceUID`);
    return {
      studyInstanceUid,
      accessionNumber: firstString(json, TAG.accessionNumber),
      modality: (json[TAG.modalitiesInStudy]?.Value ?? []).map(String).join("\\"),
      seriesCount: Number(json[TAG.seriesCount]?.Value?.[0] ?? 0) || 0,
      instanceCount: Number(json[TAG.instanceCount]?.Value?.[0] ?? 0) || 0,
    };
  }

  #failure(e: unknown, what: string, deadline: Deadline, signal: AbortSignal | undefined): unknown {
    const aborted = callerAbort(signal);
    if (aborted !== undefined) return aborted;
    if (e instanceof PacsRequestError || e instanceof PacsUnavailableError) return e;
    if (deadline.timedOutAfterMs !== undefined) {
      return new PacsUnavailableError(`${this.description}: ${what}: no answer within ${deadline.timedOutAfterMs / 1000} s`, { cause: e });
    }
    if (e instanceof MultipartError) {
      if (e.truncated) return new PacsUnavailableError(`${this.description}: ${what}: the answer stopped early (${e.message})`, { cause: e });
      return new PacsRequestError(`${this.description}: ${what}: malformed multipart answer (${e.message})`, { cause: e });
    }
    // Network failures (refused, reset, closed mid-body) carry a system error code.
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    if (e instanceof StaleConnection || (typeof code === "string" && /^(E[A-Z]+|ERR_STREAM_PREMATURE_CLOSE|UND_ERR_\w+)$/.test(code))) {
      return new PacsUnavailableError(`${this.description}: ${what} failed: ${code ?? (e as Error).message}`, { cause: e });
    }
    return e;
  }
}

function firstString(json: DicomJson, tag: string): string {
  const v = json[tag]?.Value?.[0];
  return v === undefined || v === null ? "" : String(v);
}

function isPart10(file: Uint8Array): boolean {
  return file.byteLength >= 132 && file[128] === 0x44 && file[129] === 0x49 && file[130] === 0x43 && file[131] === 0x4d;
}
