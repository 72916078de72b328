import { createHash } from "node:crypto";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { EntityManager } from "@mikro-orm/postgresql";
import { actorFor } from "./hub-context.js";
import { AlreadyExistsError, InvalidInputError } from "../domain/errors.js";
import { MAX_IDEMPOTENCY_KEY_LENGTH } from "../domain/ids.js";


/** One create call that may carry an idempotency key. */
export interface CreateCall<I extends DescMessage, O extends DescMessage> {
  /** Who asked (`actorOf`): keys are scoped to their caller, so one caller cannot read another's answer. */
  caller: string;
  /** The RPC, e.g. "flip.hub.v1.TaskService/CreateEchoTask": one key may serve different RPCs. */
  rpc: string;
  request: { schema: I; message: MessageShape<I> & { idempotencyKey: string } };
  response: O;
  /** How long a key is remembered. */
  ttlMs: number;
}

/** The CreateCall of the RPC that `ctx` is handling, for its handler. */
export function createCallOf<I extends DescMessage, O extends DescMessage>(
  ctx: HandlerContext,
  request: I,
  message: MessageShape<I> & { idempotencyKey: string },
  response: O,
  ttlMs: number,
): CreateCall<I, O> {
  return { caller: actorFor(ctx), rpc: `${ctx.service.typeName}/${ctx.method.name}`, request: { schema: request, message }, response, ttlMs };
}

/** A fingerprint of the request less its key: a retry must ask for exactly what the first call did. */
function fingerprint<I extends DescMessage>(schema: I, message: MessageShape<I> & { idempotencyKey: string }): string {
  const bytes = toBinary(schema, { ...message, idempotencyKey: "" });
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Runs a create RPC's body at most once per (caller, RPC, idempotency key) within the key's lifetime.
 * Without a key the body simply runs. With one, the key is claimed, the body runs and its response is
 * stored, all in one transaction: a retry after a lost response gets the stored response, and a
 * concurrent call with the same key waits on the claim and then gets it too (if the first call fails,
 * nothing is stored and the next call runs the body). The same key with a different request is refused.
 * `body` must do its work through the EntityManager it is given.
 */
export async function createOnce<I extends DescMessage, O extends DescMessage>(
  em: EntityManager,
  call: CreateCall<I, O>,
  body: (em: EntityManager) => Promise<MessageInitShape<O>>,
): Promise<MessageShape<O>> {
  const key = call.request.message.idempotencyKey.trim();
  if (key === "") return create(call.response, await body(em));
  if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) throw new InvalidInputError("idempotency_key", `must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
  const sha = fingerprint(call.request.schema, call.request.message);
  return await em.transactional(async (tx) => {
    const id = [call.caller, call.rpc, key];
    const expired = new Date(Date.now() - call.ttlMs);
    await tx.execute("delete from idempotency_key where caller = ? and rpc = ? and key = ? and created_at < ?", [...id, expired]);
    // A concurrent claim of the same key blocks here until its transaction ends, then loses the conflict.
    const claimed = await tx.execute<{ key: string }[]>(
      "insert into idempotency_key (caller, rpc, key, request_sha256, response) values (?, ?, ?, ?, '') on conflict do nothing returning key",
      [...id, sha],
    );
    if (claimed.length === 0) {
      const [earlier] = await tx.execute<{ request_sha256: string; response: Buffer }[]>(
        "select request_sha256, response from idempotency_key where caller = ? and rpc = ? and key = ?",
        id,
      );
      if (earlier!.request_sha256 !== sha) {
        throw new AlreadyExistsError(
          `idempotency key "${key}" was already used for a different ${call.rpc.split("/").pop()} request; send a new key with each new request (repeat a key only to retry the same request)`,
        );
      }
      return fromBinary(call.response, new Uint8Array(earlier!.response));
    }
    const response = create(call.response, await body(tx));
    await tx.execute("update idempotency_key set response = ? where caller = ? and rpc = ? and key = ?", [Buffer.from(toBinary(call.response, response)), ...id]);
    return response;
  });
}

/** Forgets keys older than their lifetime (each call also ignores its own expired key); returns how many. */
export async function forgetExpiredIdempotencyKeys(em: EntityManager, ttlMs: number): Promise<number> {
  const rows = await em.execute<{ key: string }[]>("delete from idempotency_key where created_at < ? returning key", [new Date(Date.now() - ttlMs)]);
  return rows.length;
}
