import { mkdirSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { tryPidLock } from "@flip/shared/process/pid-lock.js";

/** Why npm start will not start, in one line a person can act on. */
export class DemoInUseError extends Error {}

/** The lock file that marks a demo directory as in use by a running npm start. */
export const demoLockPath = (demoDir: string) => path.join(demoDir, "npm-start.pid");

/**
 * Claims the demo directory for this npm start before anything starts, so that a second one says why in
 * one line instead of starting half a platform: the directory is in use (a live npm start holds its lock
 * file), or an address the demo listens on is taken. Returns the lock's release.
 */
export interface DemoAddress {
  /** The setting that moves it, e.g. FLIP_HUB_ADDR. */
  setting: string;
  host: string;
  /** 0: any free port (nothing to check). */
  port: number;
  /** What listens there, e.g. "the hub's address". */
  what: string;
}

export async function claimDemo(opts: { demoDir: string; addresses: DemoAddress[] }): Promise<() => void> {
  mkdirSync(opts.demoDir, { recursive: true });
  const lock = tryPidLock(demoLockPath(opts.demoDir));
  if (!lock.acquired) {
    throw new DemoInUseError(
      `FLIP is already running from ${opts.demoDir} (npm start, pid ${lock.holder}): use that one, or stop it first (Ctrl-C in its terminal, or kill ${lock.holder}).`,
    );
  }
  try {
    for (const a of opts.addresses) {
      if (a.port === 0 || (await canListen(a.host, a.port))) continue;
      const hostPort = (port: number) => `${a.host.includes(":") ? `[${a.host}]` : a.host}:${port}`;
      throw new DemoInUseError(
        `port ${a.port} (${a.what}, ${hostPort(a.port)}) is in use by another program: stop it, or use another port, e.g. ${a.setting}=${hostPort(a.port + 10)} npm start`,
      );
    }
  } catch (e) {
    lock.release();
    throw e;
  }
  return lock.release;
}

/** Whether a listener could bind host:port now (EADDRINUSE and EACCES say no; other errors are raised). */
async function canListen(host: string, port: number): Promise<boolean> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", (e: NodeJS.ErrnoException) => (e.code === "EADDRINUSE" || e.code === "EACCES" ? resolve(false) : reject(e)));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
