import { readFileSync } from "node:fs";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { GpuDeviceSchema, type GpuDevice } from "@flip/gen/flip/common/v1/common_pb.js";
import { ConfigError, SettingsReader, type Env } from "@flip/shared/config/settings.js";
import { taskKindFromName, taskKindNames } from "@flip/shared/link/task-kinds.js";
import { readMetricsAddress, type MetricsAddress } from "@flip/shared/telemetry/metrics.js";
import { readTrainingPolicy, type TrainingPolicy } from "./training/policy.js";

/**
 * Federated training at the trust: researchers' containers on the trust's Docker engine (DOCKER_HOST, else
 * /var/run/docker.sock, else a private engine already running under FLIP_DOCKERD_DIR).
 */
export interface TrainingConfig {
  policy: TrainingPolicy;
}

/** Where the gateway's GPU inventory comes from. */
export type GpuSetting = { mode: "auto" } | { mode: "none" } | { mode: "declared"; gpus: GpuDevice[] };

export interface GatewayConfig {
  hubUrl: string;
  /** The trust this gateway serves; the hub must name the same trust back. */
  trustCode: string;
  /** The trust API key (secret: never logged). */
  trustKey: string;
  /** Tasks of each kind (short name) run at once; kinds absent here are only run if a handler exists, at the default. */
  capacity: Map<string, number>;
  gpus: GpuSetting;
  /** Local state: results not yet acknowledged by the hub, and the trust's own task log. */
  stateDir: string;
  /** PEM CA bundle to trust for an https hub URL with a private CA. */
  hubCa: string | undefined;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** How often local service probes and the GPU inventory are refreshed. */
  healthIntervalMs: number;
  logLevel: string;
  /** The trust's data-access service; without it the gateway does not take cohort tasks. */
  dataAccessUrl?: string | undefined;
  /** The trust-internal service key the gateway presents to local services (secret: never logged). */
  internalKey?: string | undefined;
  /** The trust's imaging service; without it the gateway takes no imaging tasks and workloads see no images. */
  imagingUrl?: string | undefined;
  /** Set when the trust runs training workloads (FLIP_TRAINING=on); without it the gateway takes no training tasks. */
  training?: TrainingConfig | undefined;
  /** Where `GET /metrics` is served (FLIP_METRICS_ADDR); metrics are off when absent. */
  metrics?: MetricsAddress | undefined;
}

/** Parses "echo=4,cohort_query=2". */
export function parseCapacity(name: string, raw: string): Map<string, number> {
  const out = new Map<string, number>();
  const expected = `comma-separated kind=count pairs, kinds from ${taskKindNames.join(", ")}, counts 0 to 256 (e.g. "echo=4,cohort_query=2")`;
  for (const part of raw.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = /^([a-z_]+)=(\d{1,3})$/.exec(part);
    if (!m || taskKindFromName(m[1]!) === undefined || Number(m[2]) > 256 || out.has(m[1]!)) throw new ConfigError(name, expected, raw);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Parses "none", "auto", or a JSON array of declared GPUs: [{"index":0,"name":"A100","memoryTotalMib":40960}]. */
export function parseGpus(name: string, raw: string | undefined): GpuSetting {
  if (raw === undefined || raw === "auto") return { mode: "auto" };
  if (raw === "none") return { mode: "none" };
  const expected = `"auto" (read nvidia-smi), "none", or a JSON array like [{"index":0,"name":"A100","uuid":"GPU-...","memoryTotalMib":40960}]`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(name, expected, raw);
  }
  if (!Array.isArray(parsed)) throw new ConfigError(name, expected, raw);
  const gpus = parsed.map((g: unknown, i) => {
    if (typeof g !== "object" || g === null) throw new ConfigError(name, expected, raw);
    const r = g as Record<string, unknown>;
    const num = (k: string, fallback: number) => (typeof r[k] === "number" && Number.isInteger(r[k]) && (r[k] as number) >= 0 ? (r[k] as number) : fallback);
    if (typeof r.name !== "string" || r.name === "") throw new ConfigError(name, `${expected}; every GPU needs a "name"`, raw);
    return create(GpuDeviceSchema, {
      index: num("index", i),
      uuid: typeof r.uuid === "string" ? r.uuid : "",
      name: r.name,
      memoryTotalMib: BigInt(num("memoryTotalMib", 0)),
    });
  });
  return { mode: "declared", gpus };
}

/** Reads the gateway's settings once; throws ConfigError naming the first bad setting. */
export function readGatewayConfig(env: Env): GatewayConfig {
  const s = new SettingsReader(env);
  const hubUrl = s.url("FLIP_HUB_URL", "http://127.0.0.1:7770", ["http", "https"])!;
  const trustCode = s.optionalString("FLIP_TRUST_CODE");
  if (!trustCode || !/^[a-z][a-z0-9-]{1,31}$/.test(trustCode)) throw new ConfigError("FLIP_TRUST_CODE", "the trust's code as registered at the hub (e.g. gstt)", trustCode ?? "");
  const trustKey = s.optionalString("FLIP_TRUST_KEY");
  if (!trustKey || !/^flip_trust_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/.test(trustKey)) {
    throw new ConfigError("FLIP_TRUST_KEY", "the trust API key issued by the hub (flip_trust_...)", trustKey ? "<hidden>" : "");
  }
  const caPath = s.optionalString("FLIP_HUB_CA");
  let hubCa: string | undefined;
  if (caPath) {
    try {
      hubCa = readFileSync(caPath, "utf8");
    } catch {
      throw new ConfigError("FLIP_HUB_CA", "a readable PEM file", caPath);
    }
  }
  const reconnectMinMs = s.int("FLIP_GATEWAY_RECONNECT_MIN_MS", 250, 10, 60_000);
  const dataAccessUrl = s.url("FLIP_DATA_ACCESS_URL", undefined, ["http", "https"]);
  const internalKey = s.optionalString("FLIP_TRUST_INTERNAL_KEY");
  if (dataAccessUrl && (!internalKey || internalKey.length < 16)) {
    throw new ConfigError("FLIP_TRUST_INTERNAL_KEY", "the trust-internal service key (16+ characters) shared with data-access, required with FLIP_DATA_ACCESS_URL", internalKey ? "<hidden>" : "");
  }
  const training = s.bool("FLIP_TRAINING", false) ? { policy: readTrainingPolicy(env) } : undefined;
  const imagingUrl = s.url("FLIP_IMAGING_URL", undefined, ["http", "https"]);
  if (imagingUrl && (!internalKey || internalKey.length < 16)) {
    throw new ConfigError("FLIP_TRUST_INTERNAL_KEY", "the trust-internal service key (16+ characters) shared with imaging, required with FLIP_IMAGING_URL", internalKey ? "<hidden>" : "");
  }
  return {
    dataAccessUrl,
    imagingUrl,
    internalKey,
    training,
    hubUrl,
    trustCode,
    trustKey,
    capacity: parseCapacity("FLIP_GATEWAY_CAPACITY", s.string("FLIP_GATEWAY_CAPACITY", "")),
    gpus: parseGpus("FLIP_GATEWAY_GPUS", s.optionalString("FLIP_GATEWAY_GPUS")),
    stateDir: path.resolve(s.string("FLIP_GATEWAY_STATE_DIR", path.join(".flip", "gateway", trustCode))),
    hubCa,
    pingIntervalMs: s.int("FLIP_GATEWAY_PING_INTERVAL_MS", 30_000, 100, 600_000),
    pingTimeoutMs: s.int("FLIP_GATEWAY_PING_TIMEOUT_MS", 10_000, 100, 120_000),
    reconnectMinMs,
    reconnectMaxMs: s.int("FLIP_GATEWAY_RECONNECT_MAX_MS", 30_000, reconnectMinMs, 600_000),
    healthIntervalMs: s.int("FLIP_GATEWAY_HEALTH_INTERVAL_MS", 30_000, 100, 3_600_000),
    logLevel: s.oneOf("FLIP_LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace", "silent"], "info"),
    metrics: readMetricsAddress(s),
  };
}
