import { Code, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { HubConfig } from "../config.js";
import type { Database } from "../db/database.js";
import type { HubMetrics } from "../metrics/hub-metrics.js";
import { actorOf, principalKey, type Principal } from "../auth/principal.js";
import { toConnectError } from "./to-connect-error.js";

/** What every handler module is given. */
export interface HubDeps {
  db: Database;
  config: HubConfig;
  log: Logger;
  /** Where domains record what they measure (no-op instruments when metrics are off). */
  metrics: HubMetrics;
}

export function callerOf(ctx: HandlerContext): Principal {
  return ctx.values.get(principalKey);
}

export function actorFor(ctx: HandlerContext): string {
  return actorOf(callerOf(ctx));
}

/** Runs a handler body, mapping domain errors to Connect codes and logging the unexpected ones. */
export async function answer<T>(log: Logger, ctx: HandlerContext, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    const err = toConnectError(e);
    // Expected domain failures are the caller's business; only unexpected ones are logged as errors.
    const rpc = `${ctx.service.typeName}/${ctx.method.name}`;
    if (err.code === Code.Internal) log.error({ err: e, rpc }, "unexpected error in handler");
    // Refusals are logged for governance officers and SREs; the message says what was refused, not the target.
    else if (err.code === Code.PermissionDenied) log.info({ rpc, actor: actorOf(callerOf(ctx)) }, "call refused: permission denied");
    throw err;
  }
}
