import { context, propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Context, type Link, type Span, type SpanOptions, type TextMapGetter, type TextMapSetter } from "@opentelemetry/api";
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

/** A link to the span a carrier names (none for an empty carrier): how a new trace points at the one that caused it. */
export function linkTo(carrier: Record<string, string> | undefined): Link[] {
  const span = trace.getSpanContext(extractTraceContext(carrier, ROOT_CONTEXT));
  return span && trace.isSpanContextValid(span) ? [{ context: span }] : [];
}

/**
 * Runs `fn` inside a new span, a child of `parent` (ROOT_CONTEXT: the first span of a new trace). An error
 * it throws marks the span with the error's class only: a message may quote SQL or data, and the log line
 * that tells why carries the span's ids.
 */
export async function withSpan<T>(name: string, parent: Context, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  const span = tracer.startSpan(name, options, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (e) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.name : typeof e });
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

/**
 * A response stream that runs inside its RPC's span and ends the span when it ends. A streaming handler's
 * body runs as its messages are pulled, long after the interceptor returned: each pull enters the span's
 * context, so what the handler calls and logs belongs to the RPC.
 */
async function* endSpanWhenDone<T>(it: AsyncIterable<T>, span: Span, spanContext: Context): AsyncIterable<T> {
  const iterator = it[Symbol.asyncIterator]();
  let ended = false;
  try {
    for (;;) {
      const next = await context.with(spanContext, () => iterator.next());
      if (next.done) {
        ended = true;
        return;
      }
      yield next.value;
    }
  } catch (e) {
    ended = true;
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.setAttribute("rpc.connect_rpc.error_code", ConnectError.from(e).code);
    throw e;
  } finally {
    // Stopped early (the caller went away): let the handler's stream run its own cleanup, as `yield*` would.
    if (!ended) await context.with(spanContext, async () => await iterator.return?.());
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
  const spanContext = trace.setSpan(parent, span);
  try {
    const res = await context.with(spanContext, () => next(req));
    if (res.stream) return { ...res, message: endSpanWhenDone(res.message, span, spanContext) };
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
  const span = tracer.startSpan(`${req.service.typeName}/${req.method.name}`, {
    kind: SpanKind.CLIENT,
    attributes: { "rpc.system": "connect_rpc", "rpc.service": req.service.typeName, "rpc.method": req.method.name },
  });
  const ctx = trace.setSpan(context.active(), span);
  propagation.inject(ctx, req.header, headerSetter);
  try {
    const res = await context.with(ctx, () => next(req));
    if (res.stream) return { ...res, message: endSpanWhenDone(res.message, span, ctx) };
    span.end();
    return res;
  } catch (e) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
    throw e;
  }
};
