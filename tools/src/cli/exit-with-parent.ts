/**
 * Preloaded into services the CLI runs in the foreground (`flip hub`, `flip gateway`): when the CLI
 * dies without forwarding a signal (SIGKILL, a crash), its IPC channel to us closes; we then stop
 * ourselves with SIGTERM, through the service's own graceful shutdown, instead of living on orphaned.
 */
if (process.channel) {
  // The channel must not keep an otherwise finished service alive.
  process.channel.unref();
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
}
