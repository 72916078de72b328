import type Docker from "dockerode";
import type { Logger } from "@flip/shared/logging/logger.js";

/** The label that records the hash of what an image was made from. */
export const LABEL_INPUTS = "flip.inputs";

/** A step of making an image, reported when it starts, every few seconds while it runs, and when it ends. */
export interface ImageProgress {
  /** e.g. flip/train-numpy:1 */
  image: string;
  step: "wait" | "load" | "base" | "build" | "save";
  /** What happens, e.g. "building base image flip/base-numpy:… from Debian packages (mmdebstrap)". */
  message: string;
  seconds: number;
  done: boolean;
}

/** Runs steps of making `image`, each reported to `progress` (start, every 5 s, end) and logged when done. */
/** What building images from Debian packages needs to know, for the workload and the deployment images alike. */
export interface ImageBuildOptions {
  log: Logger;
  progress?: (p: ImageProgress) => void;
  /** Where image tarballs are kept; default FLIP_IMAGE_CACHE or ~/.cache/flip/images. */
  cacheDir?: string;
  /** Debian archive for the bases (and the images' apt-get); default FLIP_DEBIAN_MIRROR or http://deb.debian.org/debian (and FLIP_DEBIAN_SECURITY_MIRROR). */
  mirror?: string;
  securityMirror?: string;
  /** Build the images again even when the engine or the cache has them (a base found is reused). */
  rebuild?: boolean;
  /** The checkout the images are built from; default this one. */
  repoRoot?: string;
  env?: NodeJS.ProcessEnv;
}

export function stepper(image: string, progress: ((p: ImageProgress) => void) | undefined, log: Logger) {
  return async <T>(step: ImageProgress["step"], message: string, work: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    const report = (done: boolean) => progress?.({ image, step, message, seconds: Math.round((Date.now() - t0) / 100) / 10, done });
    report(false);
    const ticker = setInterval(() => report(false), 5_000);
    try {
      const result = await work();
      report(true);
      log.info({ image, step, seconds: (Date.now() - t0) / 1000 }, message);
      return result;
    } finally {
      clearInterval(ticker);
    }
  };
}

/** The engine's view of an image, or undefined when it has none by that reference. */
export async function inspectImage(docker: Docker, ref: string): Promise<Docker.ImageInspectInfo | undefined> {
  try {
    return await docker.getImage(ref).inspect();
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return undefined;
    throw e;
  }
}

/** The inputs hash an image was made from (its LABEL_INPUTS label). */
export async function inputsLabelOf(docker: Docker, ref: string): Promise<string | undefined> {
  return (await inspectImage(docker, ref))?.Config?.Labels?.[LABEL_INPUTS];
}

/** Removes the image a tag pointed to before a build moved it, unless a container still uses it. */
export async function removeIfSuperseded(docker: Docker, previousId: string | undefined, ref: string): Promise<void> {
  if (!previousId || previousId === (await inspectImage(docker, ref))?.Id) return;
  await docker
    .getImage(previousId)
    .remove()
    .catch(() => undefined);
}
