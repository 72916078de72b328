import type { DescMessage, Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { findViolation } from "./validate-message.js";

/**
 * Refuses, with InvalidArgument naming the field, any request whose strings break the rules in
 * `request-rules.ts` (control characters, length, UUID ids), before a handler or the database sees
 * them. Streamed requests are checked message by message as the handler reads them.
 */
export const validateRequests: Interceptor = (next) => async (req) => {
  if (!req.stream) {
    assertValidRequest(req.method.input, req.message);
    return await next(req);
  }
  return await next({ ...req, message: checkEach(req.method.input, req.message) });
};

async function* checkEach<M extends Message>(desc: DescMessage, messages: AsyncIterable<M>): AsyncIterable<M> {
  try {
    for await (const m of messages) {
      assertValidRequest(desc, m);
      yield m;
    }
  } catch (e) {
    throw asCallerFault(e, desc);
  }
}

/**
 * connect-es reports a streamed message it cannot decode as Internal, and the handler reading the
 * stream would take it for its own failure; it is the caller's bad bytes.
 */
function asCallerFault(e: unknown, desc: DescMessage): unknown {
  if (e instanceof ConnectError && e.code === Code.Internal && e.rawMessage.startsWith("parse binary:")) {
    return new ConnectError(`a streamed message is not a valid ${desc.typeName} (${e.rawMessage})`, Code.InvalidArgument, undefined, undefined, e);
  }
  return e;
}

/** Throws InvalidArgument naming the field when `message` breaks a rule; for paths that skip the interceptor (direct routes). */
export function assertValidRequest(desc: DescMessage, message: Message): void {
  const v = findViolation(desc, message);
  if (v) throw new ConnectError(`${v.path}: ${v.problem}`, Code.InvalidArgument);
}
