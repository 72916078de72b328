import { existsSync } from "node:fs";

const SETPRIV = process.platform === "linux" ? ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p)) : undefined;

/**
 * How FLIP starts a server it owns (PostgreSQL, Orthanc) so that FLIP alone decides when it stops:
 *
 * - In its own process group (`detached`): a terminal's Ctrl-C and `kill -TERM -<pgid>` (docker stop,
 *   systemd) reach FLIP's process, which then stops its servers in order, databases last, instead of
 *   every server stopping at once under the services that still use it.
 * - Under util-linux setpriv, which has the kernel send `deathSignal` to the server when FLIP's process
 *   dies without stopping it (SIGKILL, a crash), so no server is left holding its port and data. setpriv
 *   execs the server: the pid stays the same. Without setpriv, only the process 'exit' hooks stop it.
 *
 * Returns the command and arguments for `spawn`, and the options to merge into its options.
 */
export function ownedServer(file: string, args: string[], deathSignal: "INT" | "TERM" | "KILL"): { command: string; args: string[]; detached: true } {
  return SETPRIV ? { command: SETPRIV, args: ["--pdeathsig", deathSignal, "--", file, ...args], detached: true } : { command: file, args, detached: true };
}
