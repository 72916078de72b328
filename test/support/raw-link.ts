/**
 * A hand-driven LinkService.Connect stream: the test plays the gateway message by message, to send
 * what a real gateway never would (duplicate results, a wrong first message, another trust's code).
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { ConnectRequestSchema, HelloSchema, LinkService, type ConnectResponse } from "@flip/gen/flip/link/v1/link_pb.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { AsyncQueue } from "@flip/shared/streams/async-queue.js";

type Case = NonNullable<ConnectResponse["message"]["case"]>;
type Of<C extends Case> = Extract<ConnectResponse["message"], { case: C }>["value"];

export class RawLink {
  private readonly out = new AsyncQueue<ReturnType<typeof create<typeof ConnectRequestSchema>>>();
  private readonly received: ConnectResponse[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly abort = new AbortController();
  private endedWith: { error: ConnectError | undefined } | undefined;

  /** Like a real gateway, keep the stream alive with heartbeats (the hub closes silent streams). */
  private readonly heartbeat = setInterval(() => this.out.push(create(ConnectRequestSchema, { message: { case: "heartbeat", value: {} } })), 200).unref();

  private constructor(hubUrl: string, key: string | undefined, protocol: "grpc" | "connect") {
    // gRPC reaches the hub's direct path for the link; the Connect protocol reaches Connect's handler.
    const transport = protocol === "grpc" ? createGrpcTransport({ baseUrl: hubUrl }) : createConnectTransport({ baseUrl: hubUrl, httpVersion: "2" });
    const client = createClient(LinkService, transport);
    const headers: Record<string, string> = key === undefined ? {} : { authorization: `Bearer ${key}` };
    void (async () => {
      try {
        for await (const m of client.connect(this.out, { headers, signal: this.abort.signal })) {
          this.received.push(m);
          this.wake();
        }
        this.endedWith = { error: undefined };
      } catch (e) {
        this.endedWith = { error: ConnectError.from(e) };
      }
      clearInterval(this.heartbeat);
      this.wake();
    })();
  }

  /** Opens a stream (gRPC unless told otherwise) and sends `first` (by default a Hello for `trustCode` with echo capacity 4). */
  static open(
    hubUrl: string,
    key: string | undefined,
    first: MessageInitShape<typeof ConnectRequestSchema>["message"] | { trustCode: string; hello?: Omit<MessageInitShape<typeof HelloSchema>, "$typeName"> },
    protocol: "grpc" | "connect" = "grpc",
  ): RawLink {
    const link = new RawLink(hubUrl, key, protocol);
    if (first && "trustCode" in first) {
      link.send({ case: "hello", value: create(HelloSchema, { trustCode: first.trustCode, capacity: [{ kind: TaskKind.ECHO, maxConcurrent: 4 }], ...first.hello }) });
    } else {
      link.send(first);
    }
    return link;
  }

  send(message: MessageInitShape<typeof ConnectRequestSchema>["message"]): void {
    this.out.push(create(ConnectRequestSchema, { message }));
  }

  private wake(): void {
    for (const w of this.waiters) w();
  }

  private waitUntil<T>(probe: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = probe();
        if (v !== undefined) {
          done();
          resolve(v);
        } else if (this.endedWith && what !== "the end") {
          done();
          reject(new Error(`stream ended (${this.endedWith.error?.message ?? "ok"}) before ${what}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The next message of kind `c` not yet taken (earlier messages of other kinds stay readable). */
  async next<C extends Case>(c: C, timeoutMs = 10_000, where: (v: Of<C>) => boolean = () => true): Promise<Of<C>> {
    return await this.waitUntil(
      () => {
        const i = this.received.findIndex((m) => m.message.case === c && where(m.message.value as Of<C>));
        return i < 0 ? undefined : (this.received.splice(i, 1)[0]!.message.value as Of<C>);
      },
      `${c} message`,
      timeoutMs,
    );
  }

  /** Resolves with the status the stream ended with (undefined for a clean end). */
  async ended(timeoutMs = 10_000): Promise<ConnectError | undefined> {
    const e = await this.waitUntil(() => this.endedWith, "the end", timeoutMs);
    return e.error;
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.out.end();
    this.abort.abort();
  }
}
