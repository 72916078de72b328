import { constants as fsConstants } from "node:fs";
import { mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import * as path from "node:path";
import { readAhead } from "@flip/shared/files/read-ahead.js";
import type { BufferPool } from "@flip/shared/files/buffer-pool.js";
import { writeFully } from "@flip/shared/files/positional-writes.js";
import { isArtifactId, type ArtifactPart, type ArtifactStore } from "./store.js";

/**
 * Artifacts as files in one directory: `<id>.part` while an upload is incomplete, renamed to `<id>` when
 * complete. Several hub replicas may share the directory (e.g. a network filesystem); the database
 * decides who writes a part, this store only moves bytes.
 */
export class FsArtifactStore implements ArtifactStore {
  constructor(readonly dir: string) {}

  /** Creates the directory; call once before use. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  async adopt(id: string, file: string): Promise<void> {
    await rename(file, this.finalPath(id));
  }

  scratchDir(): string {
    return path.join(this.dir, "scratch");
  }

  localPath(id: string): string {
    return this.finalPath(id);
  }

  async openPart(id: string): Promise<ArtifactPart> {
    // O_CREAT without O_TRUNC: an existing part keeps its bytes, so an upload can resume.
    const fh = await open(this.partPath(id), fsConstants.O_RDWR | fsConstants.O_CREAT, 0o600);
    return new FsPart(fh);
  }

  readPart(id: string, end: number, chunkBytes: number): AsyncIterable<Uint8Array> {
    return readRange(this.partPath(id), 0, end, chunkBytes);
  }

  async commit(id: string): Promise<void> {
    await rename(this.partPath(id), this.finalPath(id));
  }

  async sync(id: string): Promise<void> {
    const fh = await open(this.finalPath(id), fsConstants.O_RDONLY);
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await this.syncDir();
  }

  async discardPart(id: string): Promise<void> {
    await rm(this.partPath(id), { force: true });
  }

  read(id: string, offset: number, chunkBytes: number, buffers?: BufferPool): AsyncIterable<Uint8Array> {
    return readRange(this.finalPath(id), offset, undefined, chunkBytes, buffers);
  }

  async remove(id: string): Promise<void> {
    await rm(this.finalPath(id), { force: true });
  }

  private finalPath(id: string): string {
    if (!isArtifactId(id)) throw new Error(`not an artifact id: ${JSON.stringify(id)}`);
    return path.join(this.dir, id);
  }

  private partPath(id: string): string {
    return `${this.finalPath(id)}.part`;
  }

  /** A rename is durable only once its directory entry is: fsync the directory too. */
  private async syncDir(): Promise<void> {
    const dh = await open(this.dir, fsConstants.O_RDONLY);
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }
}

class FsPart implements ArtifactPart {
  constructor(private readonly fh: FileHandle) {}

  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }

  async truncate(length: number): Promise<void> {
    await this.fh.truncate(length);
  }

  async writeAt(data: readonly Uint8Array[], position: number): Promise<void> {
    await writeFully(this.fh, data, position);
  }

  async sync(): Promise<void> {
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Reads [start, end) of a file (to its end when `end` is undefined), read ahead (see `readAhead`). */
async function* readRange(file: string, start: number, end: number | undefined, chunkBytes: number, buffers?: BufferPool): AsyncGenerator<Uint8Array> {
  const fh = await open(file, fsConstants.O_RDONLY);
  try {
    const stop = end ?? (await fh.stat()).size;
    const ended = (at: number) => `${path.basename(file)} ended at ${at}, expected ${stop} bytes`;
    for await (const { data } of readAhead(fh, start, stop, chunkBytes, { buffers, ended })) yield data;
  } finally {
    await fh.close();
  }
}
