import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { KindCapacitySchema, type Welcome } from "@flip/gen/flip/link/v1/link_pb.js";
import { taskKindFromName, taskKindNameOfCase } from "@flip/shared/link/task-kinds.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { GatewayConfig } from "./config.js";
import { HealthReporter, type HealthSource, type ServiceProbe } from "./health/health-reporter.js";
import { HubLink } from "./link/hub-link.js";
import { defaultTaskHandlers } from "./tasks/registry.js";
import { FileResultStore, MemoryResultStore } from "./tasks/result-store.js";
import type { TaskHandlers } from "./tasks/task-handler.js";
import { FileTaskLog, noTaskLog, type TaskLog } from "./tasks/task-log.js";
import { TaskRunner } from "./tasks/task-runner.js";

export const GATEWAY_VERSION = "flip-gateway/0.1.0";

/** Tasks of a kind run at once when the configuration does not say. */
export const DEFAULT_KIND_CAPACITY = 4;

export interface GatewayOptions {
  /** Task handlers by kind; defaults to every handler in tasks/registry.ts. */
  handlers?: TaskHandlers;
  /** Probes of the trust's local services, reported in heartbeats (ignored when `health` is given). */
  probes?: ServiceProbe[];
  /** Where heartbeats get health from; defaults to probes plus the GPU inventory. */
  health?: HealthSource;
  /** Keep unacknowledged results and the task log under config.stateDir (default); false keeps them in memory (simulations). */
  persistent?: boolean;
  /** The trust's task log, when handlers write to it too (training); defaults to taskLogPath(stateDir), or none when not persistent. */
  taskLog?: TaskLog;
}

/** The trust's own task log: JSON lines under the state directory. */
export function taskLogPath(stateDir: string): string {
  return path.join(stateDir, "tasks.jsonl");
}

export interface RunningGateway {
  readonly trustCode: string;
  readonly link: HubLink;
  readonly runner: TaskRunner;
  /** The capacity declared to the hub, per kind. */
  readonly capacity: ReadonlyMap<string, number>;
  /** Resolves at the next Welcome (at once when linked). */
  linked(timeoutMs?: number): Promise<Welcome>;
  /** Resolves when closed; rejects with LinkRefusedError when the hub refuses this trust (the gateway cannot run). */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

/** The capacity to declare: configured counts for the kinds this gateway has handlers for. */
export function effectiveCapacity(configured: ReadonlyMap<string, number>, handlers: TaskHandlers, log: Logger): Map<string, number> {
  const handled = new Set(Object.keys(handlers).map(taskKindNameOfCase));
  for (const kind of configured.keys()) {
    if (!handled.has(kind)) log.warn({ kind }, "capacity configured for a task kind this gateway has no handler for; ignored");
  }
  return new Map([...handled].map((kind) => [kind, configured.get(kind) ?? DEFAULT_KIND_CAPACITY]));
}

/** Starts a trust gateway: health reporting, the task runner, and the link to the hub. */
export async function startGateway(config: GatewayConfig, log: Logger, opts: GatewayOptions = {}): Promise<RunningGateway> {
  const handlers = opts.handlers ?? defaultTaskHandlers;
  const capacity = effectiveCapacity(config.capacity, handlers, log);
  const persistent = opts.persistent ?? true;
  const health = opts.health ?? new HealthReporter({ probes: opts.probes ?? [], gpus: config.gpus, intervalMs: config.healthIntervalMs, log });
  await health.start?.();
  let link: HubLink | undefined;
  const runner = new TaskRunner({
    handlers,
    capacity,
    trustCode: config.trustCode,
    results: persistent ? new FileResultStore(path.join(config.stateDir, "pending-results"), log) : new MemoryResultStore(),
    taskLog: opts.taskLog ?? (persistent ? new FileTaskLog(taskLogPath(config.stateDir)) : noTaskLog),
    log,
    send: (message, traceContext) => link?.send(message, traceContext) ?? false,
  });
  link = new HubLink({
    config,
    log,
    runner,
    health,
    capacity: [...capacity].map(([kind, max]) => create(KindCapacitySchema, { kind: taskKindFromName(kind), maxConcurrent: max })),
    gatewayVersion: GATEWAY_VERSION,
  });
  const hubLink = link;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await runner.close();
      await hubLink.stop();
      await health.stop?.();
    })());
  // A refused link ends the gateway: stop its tasks and health checks too.
  const done = hubLink.done.catch(async (e: unknown) => {
    await close();
    throw e;
  });
  done.catch(() => undefined);
  log.info({ hub: config.hubUrl, trust: config.trustCode, capacity: Object.fromEntries(capacity), stateDir: persistent ? config.stateDir : undefined }, "gateway started");
  return {
    trustCode: config.trustCode,
    link: hubLink,
    runner,
    capacity,
    done,
    close,
    linked(timeoutMs = 30_000) {
      const now = hubLink.welcome;
      if (now) return Promise.resolve(now);
      return new Promise<Welcome>((resolve, reject) => {
        const timer = setTimeout(() => {
          off();
          reject(new Error(`gateway ${config.trustCode} did not link to the hub within ${timeoutMs} ms`));
        }, timeoutMs);
        const off = hubLink.onLinked((w) => {
          clearTimeout(timer);
          off();
          resolve(w);
        });
        done.then(
          () => undefined,
          (e: unknown) => {
            clearTimeout(timer);
            off();
            reject(e);
          },
        );
      });
    },
  };
}
