import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import * as path from "node:path";
import type Docker from "dockerode";
import { followDockerStream } from "./docker-stream.js";
import { MMDEBSTRAP_OPTIONS, type BaseSpec } from "./workloads.js";

/** Debian's archives for the suite: main, its updates and its security updates. */
export function debianSources(suite: string, mirror: string, securityMirror: string): string[] {
  return [`deb ${mirror} ${suite} main`, `deb ${mirror} ${suite}-updates main`, `deb ${securityMirror} ${suite}-security main`];
}

/** Bookworm's archives: the mirrors given, else FLIP_DEBIAN_MIRROR and FLIP_DEBIAN_SECURITY_MIRROR, else deb.debian.org. */
export function bookwormSources(opts: { mirror?: string | undefined; securityMirror?: string | undefined }, env: NodeJS.ProcessEnv): string[] {
  return debianSources(
    "bookworm",
    opts.mirror ?? env.FLIP_DEBIAN_MIRROR ?? "http://deb.debian.org/debian",
    opts.securityMirror ?? env.FLIP_DEBIAN_SECURITY_MIRROR ?? "http://deb.debian.org/debian-security",
  );
}

/** mmdebstrap is missing or failed; the message says what to install or where to look. */
export class BaseImageError extends Error {
  override readonly name = "BaseImageError";
}

/**
 * Makes the base's root filesystem from Debian packages with mmdebstrap (a tarball under `workDir`),
 * imports it as `tag` and removes the tarball. Needs mmdebstrap (root, or user namespaces) and the archives.
 */
export async function buildBaseImage(docker: Docker, base: BaseSpec, tag: string, opts: { workDir: string; sources: string[]; onLine?: (line: string) => void }): Promise<void> {
  await mkdir(opts.workDir, { recursive: true });
  const tarball = path.join(opts.workDir, `base-${base.name}-${process.pid}.tar`);
  try {
    await mmdebstrap(base, tarball, opts.sources, opts.onLine);
    const [repo, version] = splitTag(tag);
    await followDockerStream(await docker.importImage(createReadStream(tarball), { repo, tag: version }));
  } finally {
    await rm(tarball, { force: true });
  }
}

function mmdebstrap(base: BaseSpec, tarball: string, sources: string[], onLine?: (line: string) => void): Promise<void> {
  const options = base.variant ? MMDEBSTRAP_OPTIONS.map((o) => (o.startsWith("--variant=") ? `--variant=${base.variant}` : o)) : MMDEBSTRAP_OPTIONS;
  const args = [...options, `--include=${base.packages.join(",")}`];
  if (base.unpacked.length > 0) {
    // apt in a hook works on the new root (mmdebstrap sets APT_CONFIG); dpkg-deb -x unpacks without dependencies.
    const names = base.unpacked.join(" ");
    args.push(`--customize-hook=cd "$1/tmp" && apt-get download ${names} && for f in *.deb; do dpkg-deb -x "$f" "$1"; done && rm -f ./*.deb`);
  }
  args.push("--format=tar", base.suite, tarball, ...sources);
  return new Promise((resolve, reject) => {
    const child = spawn("mmdebstrap", args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C.UTF-8" } });
    const tail: string[] = [];
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 30) tail.shift();
        onLine?.(line);
      }
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", (e: NodeJS.ErrnoException) =>
      reject(e.code === "ENOENT" ? new BaseImageError("mmdebstrap is not installed: apt-get install mmdebstrap (images are made offline from Debian packages)") : e),
    );
    child.on("exit", (code, signal) => {
      if (code === 0) resolve();
      else reject(new BaseImageError(`mmdebstrap failed (${signal ?? `exit ${code}`}) making the ${base.name} base image:\n${tail.join("\n")}`));
    });
  });
}

/** ["flip/base-numpy", "abc"] of "flip/base-numpy:abc". */
export function splitTag(tag: string): [string, string] {
  const at = tag.lastIndexOf(":");
  return at > tag.lastIndexOf("/") ? [tag.slice(0, at), tag.slice(at + 1)] : [tag, "latest"];
}
