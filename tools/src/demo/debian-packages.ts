import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/** A program on PATH (or in /usr/sbin), or, given an absolute path, that file (e.g. a plugin). */
const present = (program: string) =>
  program.startsWith("/") ? existsSync(program) : spawnSync("sh", ["-c", `command -v ${program} || test -x /usr/sbin/${program}`], { stdio: "ignore" }).status === 0;

/**
 * On a fresh Debian machine, as root: installs the Debian packages whose programs are missing, so
 * `npm install && npm start` works without a manual step. FLIP_NO_APT=1 turns this off; without root or
 * apt-get nothing is installed (the caller's own check then says what is missing). Returns the
 * programs still missing.
 */
export function ensureDebianPackages(
  /** Each program (or absolute file path) and the Debian package that provides it. */
  needs: readonly (readonly [program: string, debianPackage: string])[],
  purpose: string,
  opts: { step: (line: string) => void; out: NodeJS.WritableStream },
): string[] {
  const missing = () => needs.filter(([program]) => !present(program));
  const before = missing();
  if (before.length === 0 || process.env.FLIP_NO_APT === "1" || process.getuid?.() !== 0 || !present("apt-get")) return before.map(([p]) => p);
  const packages = [...new Set(before.map(([, pkg]) => pkg))];
  opts.step(`installing ${packages.join(", ")} with apt-get for ${purpose} (FLIP_NO_APT=1 skips this)`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = spawnSync("apt-get", ["update", "-qq"], { stdio: ["ignore", "ignore", "inherit"], env });
  const install = update.status === 0 ? spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], { stdio: ["ignore", "ignore", "inherit"], env }) : update;
  if (install.status !== 0) opts.out.write(`  (apt-get could not install ${packages.join(", ")})\n`);
  return missing().map(([p]) => p);
}
