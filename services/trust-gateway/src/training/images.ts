import { open, readdir, realpath, stat } from "node:fs/promises";
import * as path from "node:path";

/** An image file a workload may read. */
export interface ImageFile {
  /** Its path under the project's image directory, "/"-separated. */
  imageId: string;
  format: string;
  sizeBytes: number;
  /** The first directory of its path (one directory per study), or empty. */
  studyKey: string;
}

/** No such image for the project (or an id that tries to leave its directory). */
export class ImageNotFoundError extends Error {
  override readonly name = "ImageNotFoundError";
}

/** Most files listed, so a misconfigured directory cannot make the gateway walk a whole disk. */
const MAX_IMAGES = 100_000;

/**
 * A project's images at the trust, read from `<imageDir>/<projectId>/` (until the imaging service serves
 * them). Ids are paths relative to that directory; nothing outside it is listed or read, symbolic links
 * included.
 */
export class ProjectImages {
  readonly dir: string;

  constructor(imageDir: string, projectId: string) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(projectId)) throw new Error("not a project id");
    this.dir = path.join(imageDir, projectId);
  }

  async list(): Promise<ImageFile[]> {
    const root = await this.root();
    if (!root) return [];
    const out: ImageFile[] = [];
    const walk = async (rel: string): Promise<void> => {
      const entries = await readdir(path.join(root, rel), { withFileTypes: true });
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const e of entries) {
        if (out.length >= MAX_IMAGES || e.name.startsWith(".")) continue;
        const childRel = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(childRel);
        else if (e.isFile()) {
          const { size } = await stat(path.join(root, childRel));
          out.push({ imageId: childRel, format: imageFormat(e.name), sizeBytes: size, studyKey: childRel.includes("/") ? childRel.split("/")[0]! : "" });
        }
      }
    };
    await walk("");
    return out;
  }

  /** The image's bytes in chunks of at most `chunkBytes`. */
  async *read(imageId: string, chunkBytes: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const file = await this.resolve(imageId);
    const fh = await open(file, "r");
    try {
      for (let at = 0; ; ) {
        signal?.throwIfAborted();
        const buf = Buffer.allocUnsafe(chunkBytes);
        const { bytesRead } = await fh.read(buf, 0, chunkBytes, at);
        if (bytesRead === 0) return;
        at += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }

  private async root(): Promise<string | undefined> {
    try {
      return await realpath(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  /** The file of an id, refusing ids that are not plain relative paths or that resolve (through links) outside the directory. */
  private async resolve(imageId: string): Promise<string> {
    const notFound = () => new ImageNotFoundError(`no image ${JSON.stringify(imageId.slice(0, 200))} for this project`);
    const segments = imageId.split("/");
    if (imageId === "" || imageId.startsWith("/") || imageId.includes("\\") || imageId.includes("\0") || segments.some((s) => s === "" || s === "." || s === ".." || s.startsWith("."))) {
      throw notFound();
    }
    const root = await this.root();
    if (!root) throw notFound();
    let real: string;
    try {
      real = await realpath(path.join(root, ...segments));
    } catch {
      throw notFound();
    }
    if (!real.startsWith(root + path.sep) || !(await stat(real)).isFile()) throw notFound();
    return real;
  }
}

/** "nifti", "dicom", "png", ...: from the file name. */
export function imageFormat(name: string): string {
  const lower = name.toLowerCase();
  if (lower.endsWith(".nii.gz") || lower.endsWith(".nii")) return "nifti";
  if (lower.endsWith(".dcm")) return "dicom";
  const ext = path.extname(lower).slice(1);
  return ext || "unknown";
}
