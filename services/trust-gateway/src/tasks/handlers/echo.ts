import { durationMs } from "@bufbuild/protobuf/wkt";
import { sleep } from "../../link/backoff.js";
import { TaskErrorCode, TaskFailure, type TaskHandler } from "../task-handler.js";

/** Diagnostics: answers with the message after the requested delay, or fails when asked to. */
export const echoHandler: TaskHandler<"echo"> = async (spec, ctx) => {
  const delayMs = spec.delay ? durationMs(spec.delay) : 0;
  if (delayMs > 0) {
    // Progress in steps, so a long echo exercises progress reports and stops promptly when cancelled.
    const steps = Math.min(10, Math.max(1, Math.floor(delayMs / 200)));
    for (let i = 0; i < steps && !ctx.signal.aborted; i++) {
      await sleep(delayMs / steps, ctx.signal);
      ctx.progress((i + 1) / steps, `waited ${Math.round(((i + 1) * delayMs) / steps)} of ${delayMs} ms`);
    }
    ctx.signal.throwIfAborted();
  }
  if (spec.fail) throw new TaskFailure(TaskErrorCode.INVALID, "the echo task was asked to fail");
  return { message: spec.message, trustCode: ctx.trustCode };
};
