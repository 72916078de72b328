/**
 * The real `npm start`, as a person runs it in a terminal: npm in a process group of its own (the
 * terminal's foreground group), so a test can signal the whole group as a terminal's Ctrl-C does, and
 * read what the person sees (stdout) apart from the logs (stderr).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { repoRoot } from "../support/processes.js";

export interface NpmStart {
  readonly child: ChildProcess;
  /** Every line written to stdout so far: the demo's story for its reader. */
  readonly stdout: string[];
  /** Every line written to stderr so far: logs (JSON) and one-line refusals. */
  readonly stderr: string[];
  /** Resolves with the exit code (null when killed by a signal) once the output has been read to the end. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the index of the first stdout line at or after `since` that matches; rejects if npm exits first. */
  waitForLine(pattern: RegExp, opts?: { since?: number; timeoutMs?: number }): Promise<number>;
  /** Sends `signal` to the whole process group (npm, node and anything else still in it), as a terminal does. */
  signalGroup(signal: NodeJS.Signals): void;
}

const groups = new Set<number>();
process.once("exit", () => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** Runs `npm start -- <args>` from the repository root with `env` added to this process's environment. */
export function npmStart(args: string[], env: Record<string, string>): NpmStart {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, FLIP_NO_APT: "1", ...env };
  delete childEnv.DATABASE_URL;
  delete childEnv.FLIP_HUB_DATA_DIR;
  const child = spawn("npm", ["start", "--", ...args], { cwd: repoRoot, env: childEnv, stdio: ["ignore", "pipe", "pipe"], detached: true });
  groups.add(child.pid!);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  const echo = process.env.FLIP_TEST_ECHO_LOGS === "1";
  const collect = (into: string[], name: string) => (line: string) => {
    into.push(line);
    if (echo) process.stderr.write(`[npm start ${name}] ${line}\n`);
    for (const w of waiters) w();
  };
  createInterface({ input: child.stdout! }).on("line", collect(stdout, "stdout"));
  createInterface({ input: child.stderr! }).on("line", collect(stderr, "stderr"));
  let ended = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code, signal) => {
      ended = true;
      groups.delete(child.pid!);
      resolve({ code, signal });
      for (const w of waiters) w();
    }),
  );
  return {
    child,
    stdout,
    stderr,
    exited,
    waitForLine(pattern, { since = 0, timeoutMs = 240_000 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const i = stdout.findIndex((l, n) => n >= since && pattern.test(l));
          if (i >= 0) return done(() => resolve(i));
          if (ended) done(() => reject(new Error(`npm start exited before printing ${pattern}; last lines:\n${[...stdout, ...stderr].slice(-15).join("\n")}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`npm start did not print ${pattern} within ${timeoutMs} ms; last lines:\n${stdout.slice(-10).join("\n")}`))), timeoutMs);
        const done = (then: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          then();
        };
        waiters.add(check);
        check();
      });
    },
    signalGroup(signal) {
      process.kill(-child.pid!, signal);
    },
  };
}

/** Live processes whose command line mentions `text` (e.g. a demo directory), read from /proc. */
export function processesMentioning(text: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let command: string;
    try {
      command = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim();
    } catch {
      continue; // gone meanwhile
    }
    if (command.includes(text)) found.push({ pid: Number(entry), command });
  }
  return found;
}

/** Waits until no live process mentions `text`; resolves with those still left after `timeoutMs`. */
export async function processesGone(text: string, timeoutMs = 20_000): Promise<{ pid: number; command: string }[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = processesMentioning(text);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}
