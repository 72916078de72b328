import { readFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import type { Logger } from "../logging/logger.js";
import { PeriodicJob } from "../process/periodic-job.js";

/**
 * A health file: how a process that serves no health RPC (the trust gateway) tells a container health
 * check whether it does its job. The process rewrites it every few seconds, so a hung process shows as a
 * stale file rather than as healthy forever; `probe.ts file` reads it.
 */
export interface HealthStatus {
  serving: boolean;
  /** Why, for the operator: e.g. "linked to the hub", "link waiting". */
  detail: string;
}

interface HealthFileContent extends HealthStatus {
  /** When it was written (ISO 8601). */
  at: string;
}

/** Writes `status` to `file` through a temporary file, so a reader never sees half of it. */
export async function writeHealthFile(file: string, status: HealthStatus, now = new Date()): Promise<void> {
  const content: HealthFileContent = { ...status, at: now.toISOString() };
  const part = `${file}.part`;
  await writeFile(part, `${JSON.stringify(content)}\n`);
  await rename(part, file);
}

/** Writes `read()` to `file` now and every `intervalMs` until stopped. */
export async function keepHealthFile(file: string, read: () => HealthStatus, intervalMs: number, log: Logger): Promise<{ stop(): Promise<void> }> {
  const job = new PeriodicJob("health file", intervalMs, () => writeHealthFile(file, read()), log);
  await job.runNow();
  job.start();
  return job;
}

/** Whether the health file says serving and was written within `maxAgeMs`; `why` says what was found. */
export function readHealthFile(file: string, maxAgeMs: number, now = Date.now()): { serving: boolean; why: string } {
  let content: Partial<HealthFileContent>;
  try {
    content = JSON.parse(readFileSync(file, "utf8")) as Partial<HealthFileContent>;
  } catch (e) {
    return { serving: false, why: `cannot read the health file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
  }
  const ageMs = now - Date.parse(content.at ?? "");
  if (!(ageMs <= maxAgeMs)) return { serving: false, why: `the health file ${file} is stale (written ${content.at ?? "never"}): the process is stuck or gone` };
  return { serving: content.serving === true, why: String(content.detail ?? "") };
}
