import { context, propagation, trace, SpanKind, SpanStatusCode, type Context, type Span, type TextMapGetter, type TextMapSetter } from "@opentelemetry/api";
import { ConnectError, type Interceptor } from "@connectrpc/connect";

export const tracer = trace.getTracer("flip");

/** Writes the W3C trace context of `ctx` into a plain map (for per-message carriers on streams). */
export function injectTraceContext(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** Reads a W3C trace context from a plain map. */
export function extractTraceContext(carrier: Record<string, string> | undefined, base: Context = context.active()): Context {
  return carrier ? propagation.extract(base, carrier) : base;
}

/** Runs `fn` inside a new span that is a child of the given carrier's context. */
export async function withSpan<T>(name: string, parent: Context, attributes: Record<string, string | number | boolean>, fn: (span: Span) => Promise<T>): Promise<T> {
  const span = tracer.startSpan(name, { attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (e) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
    throw e;
  } finally {
    span.end();
  }
}

const headerGetter: TextMapGetter<Headers> = {
  get: (h, k) => h.get(k) ?? undefined,
  keys: (h) => [...h.keys()],
};
/** The trace context a request's headers carry (W3C traceparent/tracestate), on top of the active one. */
export function contextFromHeaders(headers: Headers): Context {
  return propagation.extract(context.active(), headers, headerGetter);
}

const headerSetter: TextMapSetter<Headers> = { set: (h, k, v) => h.set(k, v) };

async function* endSpanWhenDone<T>(it: AsyncIterable<T>, span: Span): AsyncIterable<T> {
  try {
    yield* it;
  } catch (e) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.setAttribute("rpc.connect_rpc.error_code", ConnectError.from(e).code);
    throw e;
  } finally {
    span.end();
  }
}

/** Server interceptor: a SERVER span per RPC, continuing the caller's trace; streaming spans end with the stream. */
export const serverTracing: Interceptor = (next) => async (req) => {
  const parent = contextFromHeaders(req.header);
  const span = tracer.startSpan(`${req.service.typeName}/${req.method.name}`, {
    kind: SpanKind.SERVER,
    attributes: { "rpc.system": "connect_rpc", "rpc.service": req.service.typeName, "rpc.method": req.method.name },
  }, parent);
  try {
    const res = await context.with(trace.setSpan(parent, span), () => next(req));
    if (res.stream) return { ...res, message: endSpanWhenDone(res.message, span) };
    span.end();
    return res;
  } catch (e) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.setAttribute("rpc.connect_rpc.error_code", ConnectError.from(e).code);
    span.end();
    throw e;
  }
};

/** Client interceptor: a CLIENT span per RPC, with W3C headers injected. */
export const clientTracing: Interceptor = (next) => async (req) => {
  const span = tracer.startSpan(`${req.service.typeName}/${req.method.name}`, { kind: SpanKind.CLIENT });
  const ctx = trace.setSpan(context.active(), span);
  propagation.inject(ctx, req.header, headerSetter);
  try {
    const res = await context.with(ctx, () => next(req));
    if (res.stream) return { ...res, message: endSpanWhenDone(res.message, span) };
    span.end();
    return res;
  } catch (e) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
    throw e;
  }
};
