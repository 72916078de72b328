/**
 * V8 flags every service process runs with (hub, gateway, data-access; the CLI's `flip hub` and
 * `flip gateway`, the tests' and the benchmarks' service processes).
 *
 * `--max-semi-space-size=4` (MiB): Node 24 sizes the young generation from the heap limit, up to tens of
 * MiB, and each young-generation collection then pauses the process for 8-13 ms on this project's
 * 2-vCPU machines, which is the whole tail of task dispatch (p99 11-20 ms at 100 trusts). At 4 MiB the
 * pauses are about 1 ms, more of them; it also lets the buffers of artifact transfers die young.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4"];
