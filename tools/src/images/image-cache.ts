import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { constants as zlib, createZstdCompress, createZstdDecompress } from "node:zlib";
import type Docker from "dockerode";
import { tryPidLock } from "@flip/shared/process/pid-lock.js";
import { followDockerStream } from "./docker-stream.js";

/** Where image tarballs are kept: FLIP_IMAGE_CACHE, else ~/.cache/flip/images. */
export function imageCacheDir(env: NodeJS.ProcessEnv): string {
  return env.FLIP_IMAGE_CACHE ?? path.join(os.homedir(), ".cache", "flip", "images");
}

/**
 * Image tarballs (`docker save`, zstd-compressed) in one directory, named
 * `<workload>-<base hash>-<inputs hash>.tar.zst`: a tarball holds the workload image and its base, so
 * loading one also brings back a base that a changed workload can be built on.
 */
export class ImageCache {
  constructor(readonly dir: string) {}

  file(workload: string, baseHash: string, inputsHash: string): string {
    return path.join(this.dir, `${workload}-${baseHash.slice(0, 16)}-${inputsHash.slice(0, 16)}.tar.zst`);
  }

  /** Any tarball of `workload` made on this base (the newest first). */
  async withBase(workload: string, baseHash: string): Promise<string[]> {
    const prefix = `${workload}-${baseHash.slice(0, 16)}-`;
    const names = (await this.names()).filter((n) => n.startsWith(prefix) && n.endsWith(".tar.zst"));
    const dated = await Promise.all(names.map(async (n) => ({ file: path.join(this.dir, n), mtime: (await stat(path.join(this.dir, n))).mtimeMs })));
    return dated.sort((a, b) => b.mtime - a.mtime).map((d) => d.file);
  }

  /** Writes the images `refs` to `file` (through a temporary file, so a reader never sees half of one). */
  async save(docker: Docker, refs: string[], file: string): Promise<number> {
    await mkdir(this.dir, { recursive: true });
    const part = `${file}.part-${process.pid}`;
    try {
      // dockerode has getImages (GET /images/get with several names); its type definitions lack it.
      const tar = await (docker as unknown as { getImages(o: { names: string[] }): Promise<NodeJS.ReadableStream> }).getImages({ names: refs });
      await pipeline(tar, createZstdCompress({ params: { [zlib.ZSTD_c_compressionLevel]: 3 } }), createWriteStream(part));
      await rename(part, file);
    } finally {
      await rm(part, { force: true });
    }
    return (await stat(file)).size;
  }

  /** Loads a tarball into the engine. */
  async load(docker: Docker, file: string): Promise<void> {
    const stream = createReadStream(file).pipe(createZstdDecompress());
    await followDockerStream(await docker.loadImage(stream, { quiet: true }));
  }

  /** Removes `workload`'s tarballs other than `keep`: only the newest is worth its disk. */
  async prune(workload: string, keep: string): Promise<void> {
    for (const n of await this.names()) {
      if (n.startsWith(`${workload}-`) && n.endsWith(".tar.zst") && path.join(this.dir, n) !== keep) await rm(path.join(this.dir, n), { force: true });
    }
  }

  /**
   * Runs `work` holding `<dir>/<name>.lock`, so that processes building the same image (parallel test
   * workers) take turns: the later ones then find the image made. A lock whose process is gone is taken over.
   */
  async locked<T>(name: string, onWait: (pid: number) => void, work: () => Promise<T>): Promise<T> {
    await mkdir(this.dir, { recursive: true });
    const lockPath = path.join(this.dir, `${name}.lock`);
    let told = false;
    let lock = tryPidLock(lockPath);
    while (!lock.acquired) {
      if (!told) onWait(lock.holder);
      told = true;
      await new Promise((r) => setTimeout(r, 500));
      lock = tryPidLock(lockPath);
    }
    try {
      return await work();
    } finally {
      lock.release();
    }
  }

  private async names(): Promise<string[]> {
    try {
      return await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  }
}

