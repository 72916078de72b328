/**
 * A small OTLP/HTTP collector for tests: services export to it with OTEL_EXPORTER_OTLP_PROTOCOL=http/json
 * (POST /v1/traces, an ExportTraceServiceRequest as JSON), and a test waits until the spans it expects
 * have arrived. Nothing is decoded beyond what the tests read: ids, names, services, attributes, links.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One exported span, flattened with its resource's service name. */
export interface CollectedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  /** Undefined for the first span of a trace. */
  parentSpanId: string | undefined;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  links: { traceId: string; spanId: string }[];
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpAttribute {
  key: string;
  value?: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  attributes?: OtlpAttribute[];
  links?: { traceId: string; spanId: string }[];
  status?: { code?: number };
}
interface ExportRequest {
  resourceSpans?: { resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}

function valueOf(v: OtlpValue | undefined): string | number | boolean {
  if (v?.stringValue !== undefined) return v.stringValue;
  if (v?.intValue !== undefined) return Number(v.intValue);
  if (v?.doubleValue !== undefined) return v.doubleValue;
  if (v?.boolValue !== undefined) return v.boolValue;
  return "";
}

function attributesOf(list: OtlpAttribute[] | undefined): Record<string, string | number | boolean> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, valueOf(a.value)]));
}

function spansOf(body: ExportRequest): CollectedSpan[] {
  return (body.resourceSpans ?? []).flatMap((rs) => {
    const service = String(attributesOf(rs.resource?.attributes)["service.name"] ?? "");
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        service,
        name: s.name,
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId || undefined,
        kind: s.kind ?? 0,
        attributes: attributesOf(s.attributes),
        links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
        statusCode: s.status?.code ?? 0,
      })),
    );
  });
}

export class OtlpCollector {
  /** Every span received so far, in arrival order. */
  readonly spans: CollectedSpan[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly server: ReturnType<typeof createServer>,
    /** What OTEL_EXPORTER_OTLP_ENDPOINT should say, e.g. http://127.0.0.1:41234. */
    readonly endpoint: string,
  ) {}

  /** Listens on a free port of 127.0.0.1. */
  static async start(): Promise<OtlpCollector> {
    let collector: OtlpCollector | undefined;
    const server = createServer((req, res) => void collector!.receive(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    collector = new OtlpCollector(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return collector;
  }

  /** The environment that makes a service process (spawned with `telemetry: true`) export here, quickly. */
  serviceEnv(): Record<string, string> {
    return {
      OTEL_SDK_DISABLED: "false",
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_ENDPOINT: this.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "100",
    };
  }

  /** The spans of one trace received so far. */
  trace(traceId: string): CollectedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  /**
   * Resolves with the first defined value `find` returns, asked now and after every export that
   * arrives; rejects after `timeoutMs`, naming `what` and the span names collected so far.
   */
  waitFor<T>(what: string, find: (spans: readonly CollectedSpan[]) => T | undefined, timeoutMs = 60_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find(this.spans);
        if (found === undefined) return;
        done();
        resolve(found);
      };
      const timer = setTimeout(() => {
        done();
        const seen = [...new Set(this.spans.map((s) => `${s.service}:${s.name}`))].join(", ");
        reject(new Error(`the collector did not receive ${what} within ${timeoutMs} ms; it has ${this.spans.length} spans (${seen})`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method !== "POST" || req.url !== "/v1/traces" || !String(req.headers["content-type"]).startsWith("application/json")) {
      res.writeHead(415, { "content-type": "text/plain" }).end("this test collector takes JSON spans on POST /v1/traces (OTEL_EXPORTER_OTLP_PROTOCOL=http/json)\n");
      return;
    }
    this.spans.push(...spansOf(JSON.parse(Buffer.concat(chunks).toString("utf8")) as ExportRequest));
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
    for (const wake of [...this.waiters]) wake();
  }
}

/** Spans of `trace` whose parent is not in it: just the root when the trace is complete. */
export function orphans(trace: readonly CollectedSpan[]): CollectedSpan[] {
  const ids = new Set(trace.map((s) => s.spanId));
  return trace.filter((s) => s.parentSpanId !== undefined && !ids.has(s.parentSpanId));
}

/** The trace as an indented tree ("service name", children under their parent), for failure messages and reports. */
export function treeOf(trace: readonly CollectedSpan[]): string {
  const children = new Map<string | undefined, CollectedSpan[]>();
  const ids = new Set(trace.map((s) => s.spanId));
  for (const s of trace) {
    const parent = s.parentSpanId && ids.has(s.parentSpanId) ? s.parentSpanId : undefined;
    children.set(parent, [...(children.get(parent) ?? []), s]);
  }
  const lines: string[] = [];
  const walk = (parent: string | undefined, depth: number) => {
    for (const s of children.get(parent) ?? []) {
      lines.push(`${"  ".repeat(depth)}${s.name} (${s.service})`);
      walk(s.spanId, depth + 1);
    }
  };
  walk(undefined, 0);
  return lines.join("\n");
}
