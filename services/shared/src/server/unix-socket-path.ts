import { createHash } from "node:crypto";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";

/** The longest unix socket path Linux binds or connects to: sun_path holds 108 bytes with its NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export interface ReachableSocketPath {
  /** The path to bind and connect to: the socket's own, or a short alias of its directory. */
  path: string;
  /** Removes the alias, if one was made. */
  release(): Promise<void>;
}

/**
 * A path under which a socket can be bound and reached. Deep checkouts make paths longer than sun_path
 * allows (e.g. a gateway's per-job runtime socket), so a longer path is reached through a short symlink
 * to its directory, in a private (0700) temporary directory: the socket itself is still created in its
 * own directory, where a container's bind mount sees it.
 */
export async function reachableSocketPath(socketPath: string): Promise<ReachableSocketPath> {
  if (Buffer.byteLength(socketPath) <= MAX_SOCKET_PATH_BYTES) return { path: socketPath, release: async () => {} };
  const tag = createHash("sha256").update(socketPath).digest("hex").slice(0, 8);
  const privateDir = await mkdtemp(path.join(os.tmpdir(), `flip-sock-${tag}-`));
  const alias = path.join(privateDir, "d");
  await symlink(path.dirname(socketPath), alias);
  const short = path.join(alias, path.basename(socketPath));
  if (Buffer.byteLength(short) > MAX_SOCKET_PATH_BYTES) {
    await rm(privateDir, { recursive: true, force: true });
    throw new Error(`the socket name ${path.basename(socketPath)} is too long for a unix socket even in ${os.tmpdir()}`);
  }
  return { path: short, release: () => rm(privateDir, { recursive: true, force: true }) };
}
