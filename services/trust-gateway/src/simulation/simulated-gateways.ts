import * as os from "node:os";
import * as path from "node:path";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { GatewayConfig } from "../config.js";
import { startGateway, type RunningGateway } from "../gateway.js";
import { staticHealth } from "../health/health-reporter.js";
import type { TaskHandlers } from "../tasks/task-handler.js";

export interface SimulatedTrust {
  code: string;
  key: string;
}

export interface SimulatedGateways {
  gateways: RunningGateway[];
  close(): Promise<void>;
}

/**
 * Many gateways in one process, for load tests and benchmarks: each has its own HTTP/2 connection
 * and stream, like a real trust, but shares a fixed health snapshot and keeps results in memory.
 * Starts them `connectConcurrency` at a time and resolves once every one is linked.
 */
export async function startSimulatedGateways(opts: {
  hubUrl: string;
  trusts: SimulatedTrust[];
  log: Logger;
  capacity?: Map<string, number>;
  connectConcurrency?: number;
  linkTimeoutMs?: number;
  /** Overrides of the real gateway's defaults (e.g. ping interval). */
  config?: Partial<GatewayConfig>;
  /** Task handlers per trust (e.g. a simulated trainer); the gateway's defaults otherwise. */
  handlers?: (trust: SimulatedTrust) => TaskHandlers;
}): Promise<SimulatedGateways> {
  const health = staticHealth();
  const gateways: RunningGateway[] = [];
  const queue = [...opts.trusts];
  const worker = async () => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      const config: GatewayConfig = {
        hubUrl: opts.hubUrl,
        trustCode: t.code,
        trustKey: t.key,
        capacity: opts.capacity ?? new Map([["echo", 4]]),
        gpus: { mode: "none" },
        stateDir: path.join(os.tmpdir(), "flip-simulated", t.code),
        hubCa: undefined,
        pingIntervalMs: 30_000,
        pingTimeoutMs: 10_000,
        reconnectMinMs: 250,
        reconnectMaxMs: 5_000,
        healthIntervalMs: 30_000,
        logLevel: "warn",
        ...opts.config,
      };
      const g = await startGateway(config, opts.log.child({ trust: t.code }), { health, persistent: false, handlers: opts.handlers?.(t) });
      gateways.push(g);
      await g.linked(opts.linkTimeoutMs ?? 60_000);
    }
  };
  const close = async () => {
    await Promise.all(gateways.map((g) => g.close()));
  };
  try {
    await Promise.all(Array.from({ length: opts.connectConcurrency ?? 50 }, worker));
  } catch (e) {
    await close();
    throw e;
  }
  return { gateways, close };
}
