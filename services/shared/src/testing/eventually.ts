/**
 * Reads until `ok` holds and returns that value. Throws after `timeoutMs`, naming `what`, so a test that
 * waits for something that never comes fails where it waited, not later with a confusing assertion.
 * Without `ok`, waits for a truthy value.
 */
export async function eventually<T>(
  read: () => T | Promise<T>,
  ok: (value: T) => boolean = Boolean,
  opts: { timeoutMs?: number; everyMs?: number; what?: string } = {},
): Promise<T> {
  const { timeoutMs = 10_000, everyMs = 50, what = "the awaited condition" } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
