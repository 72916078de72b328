import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { GpuSource, HealthSnapshotSchema, HealthState, ServiceHealthSchema, type HealthSnapshot, type ServiceHealth } from "@flip/gen/flip/common/v1/common_pb.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { PeriodicJob } from "@flip/shared/process/periodic-job.js";
import type { GpuSetting } from "../config.js";
import { readGpuInventory, type RunNvidiaSmi } from "./gpus.js";

/** A check of one local service the trust depends on (data-access, imaging, docker ...). */
export interface ServiceProbe {
  name: string;
  /** Resolves with the service's state; a rejection or a timeout counts as DOWN. */
  check(signal: AbortSignal): Promise<{ state: HealthState; detail?: string }>;
}

/** Where heartbeats get the trust's health from. */
export interface HealthSource {
  /** The latest snapshot; cheap, called for every heartbeat. */
  snapshot(): HealthSnapshot;
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

const PROBE_TIMEOUT_MS = 5_000;

async function runProbe(p: ServiceProbe): Promise<ServiceHealth> {
  const started = performance.now();
  let state: HealthState;
  let detail = "";
  try {
    const r = await p.check(AbortSignal.timeout(PROBE_TIMEOUT_MS));
    state = r.state;
    detail = r.detail ?? "";
  } catch (e) {
    state = HealthState.DOWN;
    detail = e instanceof Error ? e.message : String(e);
  }
  return create(ServiceHealthSchema, {
    name: p.name,
    state,
    detail: detail.slice(0, 200),
    latencyMs: Math.round((performance.now() - started) * 10) / 10,
    checkedAt: timestampFromDate(new Date()),
  });
}

/**
 * Refreshes the trust's health on its own schedule (probes and nvidia-smi are not run per heartbeat),
 * so a heartbeat always carries the latest snapshot at no cost.
 */
export class HealthReporter implements HealthSource {
  private latest: HealthSnapshot = create(HealthSnapshotSchema, { gpuSource: GpuSource.NONE, takenAt: timestampFromDate(new Date()) });
  private readonly job: PeriodicJob;

  constructor(
    private readonly opts: { probes: ServiceProbe[]; gpus: GpuSetting; intervalMs: number; log: Logger; runNvidiaSmi?: RunNvidiaSmi },
  ) {
    this.job = new PeriodicJob("health", opts.intervalMs, () => this.refresh(), opts.log);
  }

  snapshot(): HealthSnapshot {
    return this.latest;
  }

  async refresh(): Promise<void> {
    const [services, inventory] = await Promise.all([Promise.all(this.opts.probes.map(runProbe)), readGpuInventory(this.opts.gpus, this.opts.runNvidiaSmi)]);
    this.latest = create(HealthSnapshotSchema, { services, gpus: inventory.gpus, gpuSource: inventory.source, takenAt: timestampFromDate(new Date()) });
  }

  async start(): Promise<void> {
    await this.job.runNow();
    this.job.start();
  }

  async stop(): Promise<void> {
    await this.job.stop();
  }
}

/** A fixed snapshot, for simulated gateways (benchmarks) that have no local services. */
export function staticHealth(snapshot: HealthSnapshot = create(HealthSnapshotSchema, { gpuSource: GpuSource.NONE })): HealthSource {
  return { snapshot: () => snapshot };
}
