import type { BufferPool } from "@flip/shared/files/buffer-pool.js";

/**
 * Where artifact bytes live. The hub's first store is the local filesystem (`fs-store.ts`); an object
 * store can replace it behind this interface. Ids are UUIDs, checked by the caller and again by the store
 * (they become file or object names).
 */
export interface ArtifactStore {
  /** Opens the incomplete part of an artifact for writing, creating an empty one when there is none. */
  openPart(id: string): Promise<ArtifactPart>;
  /** Reads the incomplete part's bytes [0, end): how a resumed upload re-hashes what is already stored. */
  readPart(id: string, end: number, chunkBytes: number): AsyncIterable<Uint8Array>;
  /**
   * Turns a finished part into the artifact, atomically: readers see all of it or none. Nothing is
   * synced here; `sync` makes it durable later.
   */
  commit(id: string): Promise<void>;
  /** Makes a committed artifact durable: its bytes and its name. */
  sync(id: string): Promise<void>;
  /** Deletes the incomplete part, if any. */
  discardPart(id: string): Promise<void>;
  /**
   * Reads a complete artifact from `offset` to its end, in chunks of at most `chunkBytes`. With
   * `buffers` (of `chunkBytes` each), chunks are read into buffers taken from the pool, and the caller
   * gives each back once nothing holds it any more.
   */
  read(id: string, offset: number, chunkBytes: number, buffers?: BufferPool): AsyncIterable<Uint8Array>;
  /** Deletes a complete artifact, if it exists. */
  remove(id: string): Promise<void>;
  /**
   * Makes a finished file (on the store's filesystem, e.g. under `scratchDir()`) the artifact `id`, by
   * renaming it: how the aggregator stores weights it wrote without copying them.
   */
  adopt(id: string, file: string): Promise<void>;
  /** A directory on the store's filesystem for files that `adopt` will take. */
  scratchDir(): string;
  /** The file of a complete artifact, for modules that read it with positional reads (the aggregator). */
  localPath(id: string): string;
}

/** An open incomplete artifact. Writes are positional, so several may be in flight at once. */
export interface ArtifactPart {
  /** Bytes in the part now, synced or not. */
  size(): Promise<number>;
  /** Drops bytes past `length`: a tail written after the last recorded offset is not trusted. */
  truncate(length: number): Promise<void>;
  /** Writes `data` (one or more pieces, in order, not joined) at `position`. */
  writeAt(data: readonly Uint8Array[], position: number): Promise<void>;
  /** Makes every written byte durable. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `id` is a lower-case UUID, the only shape an artifact id has. */
export function isArtifactId(id: string): boolean {
  return UUID_RE.test(id);
}

/** One chunk size for every read and for clients: well under the server's 16 MiB message cap. */
export const ARTIFACT_CHUNK_BYTES = 1024 * 1024;
