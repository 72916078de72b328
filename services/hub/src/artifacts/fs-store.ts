import { constants as fsConstants } from "node:fs";
import { mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import * as path from "node:path";
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
    await this.syncDir();
  }

  async discardPart(id: string): Promise<void> {
    await rm(this.partPath(id), { force: true });
  }

  read(id: string, offset: number, chunkBytes: number): AsyncIterable<Uint8Array> {
    return readRange(this.finalPath(id), offset, undefined, chunkBytes);
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
  private end: number | undefined;

  constructor(private readonly fh: FileHandle) {}

  async size(): Promise<number> {
    this.end ??= (await this.fh.stat()).size;
    return this.end;
  }

  async truncate(length: number): Promise<void> {
    await this.fh.truncate(length);
    this.end = length;
  }

  async append(data: Uint8Array): Promise<void> {
    let at = await this.size();
    let rest = data;
    // A positional write may be short; loop until every byte is down.
    while (rest.length > 0) {
      const { bytesWritten } = await this.fh.write(rest, 0, rest.length, at);
      at += bytesWritten;
      rest = rest.subarray(bytesWritten);
    }
    this.end = at;
  }

  async sync(): Promise<void> {
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Reads [start, end) of a file (to its end when `end` is undefined); one fresh buffer per chunk, since callers keep them. */
async function* readRange(file: string, start: number, end: number | undefined, chunkBytes: number): AsyncGenerator<Uint8Array> {
  const fh = await open(file, fsConstants.O_RDONLY);
  try {
    const stop = end ?? (await fh.stat()).size;
    let at = start;
    while (at < stop) {
      const want = Math.min(chunkBytes, stop - at);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, at);
      if (bytesRead === 0) throw new Error(`${path.basename(file)} ended at ${at}, expected ${stop} bytes`);
      at += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
