/**
 * The research store on Orthanc's REST API, one request per instance, several at once if the caller
 * wishes (Orthanc serves requests on many threads).
 *
 * node:http with connections reused for half of Orthanc's keep-alive second (http/keep-alive.ts).
 * Measured on two cores: fetch stored about 400 instances/s at 60 % of a core; this about 600/s at 30 %.
 */
import type * as http from "node:http";
import { requestOnce, shortKeepAliveAgent, StaleConnection } from "../http/keep-alive.js";
import {
  ResearchStoreNotFoundError,
  ResearchStoreRequestError,
  ResearchStoreUnavailableError,
  type ResearchStore,
  type StoredInstance,
} from "./research-store.js";


/** Orthanc's words when two stores race to create one storage subdirectory (see storeInstance). */
const STORAGE_DIRECTORY_RACE = "Unable to create a subdirectory or a file in the file storage";
export interface OrthancResearchStoreOptions {
  /** REST root, e.g. http://research-store:8042. */
  url: string;
  username: string;
  password: string;
  /** Until an answer's headers arrive (default 30 s). */
  timeoutMs?: number;
}

/** A ResearchStore on an Orthanc REST API. */
export function orthancResearchStore(opts: OrthancResearchStoreOptions): ResearchStore {
  return new OrthancResearchStore(opts);
}

interface OrthancInstanceAnswer {
  ID?: string;
  ParentSeries?: string;
  ParentStudy?: string;
  Status?: string;
}

interface OrthancSeriesInstance {
  ID: string;
  IndexInSeries?: number | null;
  MainDicomTags?: { InstanceNumber?: string };
}

interface RequestOptions {
  body?: Uint8Array;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** 404 is an answer, not an error. */
  notFound?: boolean;
  timeoutMs?: number;
  /** The body is handed on as a stream: the deadline ends with the headers. */
  streamed?: boolean;
}

class OrthancResearchStore implements ResearchStore {
  readonly description: string;
  readonly #url: URL;
  readonly #authorization: string;
  readonly #timeoutMs: number;
  readonly #agent: http.Agent;

  constructor(opts: OrthancResearchStoreOptions) {
    const url = new URL(opts.url);
    url.username = "";
    url.password = "";
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ResearchStoreRequestError(`research store URL ${url} is not http(s)`);
    }
    this.#url = url;
    this.description = `orthanc ${url.toString().replace(/\/+$/, "")}`;
    this.#authorization = "Basic " + Buffer.from(`${opts.username}:${opts.password}`).toString("base64");
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#agent = shortKeepAliveAgent(url.protocol === "https:");
  }

  async storeInstance(part10: Uint8Array, signal?: AbortSignal): Promise<StoredInstance> {
    const what = "store an instance";
    const send = () => this.#send("POST", "/instances", what, { body: part10, headers: { "content-type": "application/dicom" }, signal });
    let res: http.IncomingMessage;
    try {
      res = await send();
    } catch (e) {
      // Orthanc 1.10 (Debian 12) refuses a store when another store creates the same storage subdirectory at
      // that moment; the directory then exists, so the same (idempotent) store succeeds at once.
      if (!(e instanceof ResearchStoreUnavailableError) || !e.message.includes(STORAGE_DIRECTORY_RACE)) throw e;
      res = await send();
    }
    const answer = (await this.#json(res, what)) as OrthancInstanceAnswer;
    if (!answer.ID || !answer.ParentSeries || !answer.ParentStudy) {
      throw new ResearchStoreRequestError(`${this.description}: storing an instance answered without its ids`);
    }
    return {
      instanceId: answer.ID,
      seriesId: answer.ParentSeries,
      studyId: answer.ParentStudy,
      alreadyStored: answer.Status === "AlreadyStored",
      sizeBytes: part10.byteLength,
    };
  }

  async readInstance(instanceId: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const what = `read instance ${instanceId}`;
    const res = await this.#send("GET", `/instances/${this.#id(instanceId)}/file`, what, { signal, notFound: true, streamed: true });
    if (res.statusCode === 404) {
      res.resume();
      throw new ResearchStoreNotFoundError(`${this.description}: instance ${instanceId} is not stored`);
    }
    return this.#guardedBody(res, what, signal);
  }

  async instanceSize(instanceId: string): Promise<number | undefined> {
    const what = `size of instance ${instanceId}`;
    const res = await this.#send("GET", `/instances/${this.#id(instanceId)}/attachments/dicom/size`, what, { notFound: true });
    const text = (await this.#text(res, what)).trim();
    if (res.statusCode === 404) return undefined;
    const size = Number(text);
    if (!Number.isSafeInteger(size) || size < 0) throw new ResearchStoreRequestError(`${this.description}: ${what} is not a number`);
    return size;
  }

  async seriesInstances(seriesId: string): Promise<string[]> {
    const what = `instances of series ${seriesId}`;
    const res = await this.#send("GET", `/series/${this.#id(seriesId)}/instances`, what, { notFound: true });
    if (res.statusCode === 404) {
      res.resume();
      return [];
    }
    const instances = (await this.#json(res, what)) as OrthancSeriesInstance[];
    if (!Array.isArray(instances)) throw new ResearchStoreRequestError(`${this.description}: ${what} is not a list`);
    const order = (i: OrthancSeriesInstance) => {
      const n = Number.parseInt(i.MainDicomTags?.InstanceNumber ?? "", 10);
      return Number.isFinite(n) ? n : (i.IndexInSeries ?? Number.MAX_SAFE_INTEGER);
    };
    return instances
      .map((i) => ({ id: i.ID, n: order(i) }))
      .sort((a, b) => a.n - b.n || a.id.localeCompare(b.id))
      .map((i) => i.id);
  }

  async deleteStudy(studyId: string): Promise<boolean> {
    const res = await this.#send("DELETE", `/studies/${this.#id(studyId)}`, `delete study ${studyId}`, { notFound: true });
    res.resume();
    return res.statusCode !== 404;
  }

  async ping(): Promise<void> {
    const res = await this.#send("GET", "/system", "answer", { timeoutMs: 5_000 });
    res.resume();
  }

  /** Orthanc ids are five groups of eight hex digits; anything else must not reach a URL. */
  #id(id: string): string {
    if (!/^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/.test(id)) {
      throw new ResearchStoreRequestError(`${this.description}: ${JSON.stringify(id)} is not an Orthanc id`);
    }
    return id;
  }

  /** Sends once more when a reused connection turns out to have been closed (every request here is idempotent). */
  async #send(method: string, path: string, what: string, opts: RequestOptions): Promise<http.IncomingMessage> {
    try {
      return await this.#sendOnce(method, path, what, opts);
    } catch (e) {
      if (e instanceof StaleConnection) return await this.#sendOnce(method, path, what, opts);
      throw e;
    }
  }

  async #sendOnce(method: string, path: string, what: string, opts: RequestOptions): Promise<http.IncomingMessage> {
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs).unref();
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout.signal]) : timeout.signal;
    const headers: Record<string, string | number> = {
      authorization: this.#authorization,
      ...opts.headers,
      "content-length": opts.body?.byteLength ?? 0,
    };
    let res: http.IncomingMessage;
    try {
      res = await requestOnce(this.#url, { method, path, headers, agent: this.#agent, signal, body: opts.body });
    } catch (e) {
      clearTimeout(timer);
      if (e instanceof StaleConnection) throw e;
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (timeout.signal.aborted) throw new ResearchStoreUnavailableError(`${this.description}: did not ${what} within ${timeoutMs / 1000} s`, { cause: e });
      throw new ResearchStoreUnavailableError(`${this.description}: cannot ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
    }
    if (opts.streamed) clearTimeout(timer);
    else res.once("end", () => clearTimeout(timer)).once("close", () => clearTimeout(timer));
    const status = res.statusCode ?? 0;
    if ((status >= 200 && status < 300) || (opts.notFound && status === 404)) return res;
    const text = (await this.#text(res, what).catch(() => "")).slice(0, 200).replace(/\s+/g, " ").trim();
    const answered = `HTTP ${status}${text ? ` (${text})` : ""}`;
    if (status >= 500 || status === 408 || status === 429) {
      throw new ResearchStoreUnavailableError(`${this.description}: could not ${what}: ${answered}; try again later`);
    }
    if (status === 401 || status === 403) {
      throw new ResearchStoreRequestError(`${this.description}: refused to ${what} (${answered}): check the store's username and password`);
    }
    throw new ResearchStoreRequestError(`${this.description}: refused to ${what}: ${answered}`);
  }

  async #text(res: http.IncomingMessage, what: string): Promise<string> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of res) chunks.push(chunk as Buffer);
    } catch (e) {
      throw new ResearchStoreUnavailableError(`${this.description}: ${what}: the answer was cut`, { cause: e });
    }
    return Buffer.concat(chunks).toString("utf8");
  }

  async #json(res: http.IncomingMessage, what: string): Promise<unknown> {
    const text = await this.#text(res, what);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new ResearchStoreRequestError(`${this.description}: ${what}: the answer is not JSON`, { cause: e });
    }
  }

  /** A connection cut mid-file surfaces as ResearchStoreUnavailableError. */
  async *#guardedBody(res: http.IncomingMessage, what: string, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of res) yield chunk as Buffer;
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw new ResearchStoreUnavailableError(`${this.description}: ${what}: the connection closed mid-file`, { cause: e });
    }
    if (!res.complete) throw new ResearchStoreUnavailableError(`${this.description}: ${what}: the connection closed mid-file`);
  }
}
