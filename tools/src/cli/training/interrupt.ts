/** The exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const INTERRUPTED_EXIT = 130;

/** The user pressed Ctrl-C. */
export class InterruptedError extends Error {
  override readonly name = "InterruptedError";
}

/**
 * Runs `fn` with a signal that Ctrl-C (SIGINT) aborts, so a long watch or download can stop cleanly
 * instead of dying with a stack trace; whatever `fn` then fails with (a cancelled call, most often)
 * becomes an InterruptedError. A second Ctrl-C while `fn` is still cleaning up exits at once. The
 * handler is removed when `fn` ends.
 */
export async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(INTERRUPTED_EXIT);
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  try {
    return await fn(controller.signal);
  } catch (e) {
    if (controller.signal.aborted) throw new InterruptedError("interrupted", { cause: e });
    throw e;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
