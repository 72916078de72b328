import { ConfigError, SettingsReader, type Env } from "@flip/shared/config/settings.js";
import { readMetricsAddress, type MetricsAddress } from "@flip/shared/telemetry/metrics.js";
import { loadPolicyFile, POLICY_SETTING } from "./policy/load-policy.js";
import { PERMIT_ALL, type TrustPolicy } from "./policy/policy.js";

export interface DataAccessConfig {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Owner of the OMOP database: sets up flip_local (and the reader role when no reader URL is given). */
  databaseUrl: string;
  /** The read-only role's URL; derived from databaseUrl when absent (see execution/reader-role.ts). */
  readerUrl: string | undefined;
  /** The trust-internal service key callers present as a bearer token. */
  internalKey: string;
  /** The trust's small-count threshold T; policy and hub can only raise it. */
  threshold: number;
  statementTimeoutMs: number;
  /** Most rows one cohort query may return. */
  maxRows: number;
  policy: TrustPolicy;
  logLevel: string;
  /** Where `GET /metrics` is served (FLIP_METRICS_ADDR); metrics are off when absent. */
  metrics?: MetricsAddress | undefined;
}

/**
 * The lowest threshold accepted. At T = 2 a hidden count can only be 1, so suppression would hide nothing;
 * 3 is the smallest value where a hidden count is still uncertain.
 */
export const MIN_THRESHOLD = 3;

/** Reads the service's settings once; throws ConfigError naming the first bad setting. */
export function readDataAccessConfig(env: Env): DataAccessConfig {
  const s = new SettingsReader(env);
  const { host, port } = s.address("FLIP_DATA_ACCESS_ADDR", "127.0.0.1:7781");
  const databaseUrl = s.url("FLIP_DATA_ACCESS_DATABASE_URL", undefined, ["postgres", "postgresql"]);
  if (databaseUrl === undefined) throw new ConfigError("FLIP_DATA_ACCESS_DATABASE_URL", "the OMOP database owner's URL, e.g. postgres://user:pass@host:5432/omop", "");
  const internalKey = s.optionalString("FLIP_TRUST_INTERNAL_KEY");
  if (internalKey === undefined || internalKey.length < 16) {
    throw new ConfigError("FLIP_TRUST_INTERNAL_KEY", "the trust-internal service key, at least 16 characters", internalKey === undefined ? "" : "<hidden>");
  }
  const policyFile = s.optionalString(POLICY_SETTING);
  return {
    host,
    port,
    databaseUrl,
    readerUrl: s.url("FLIP_DATA_ACCESS_READER_URL", undefined, ["postgres", "postgresql"]),
    internalKey,
    threshold: s.int("FLIP_DATA_ACCESS_THRESHOLD", 10, MIN_THRESHOLD, 1_000),
    statementTimeoutMs: s.int("FLIP_DATA_ACCESS_STATEMENT_TIMEOUT_MS", 30_000, 100, 3_600_000),
    maxRows: s.int("FLIP_DATA_ACCESS_MAX_ROWS", 500_000, 1, 10_000_000),
    policy: policyFile === undefined ? PERMIT_ALL : loadPolicyFile(policyFile),
    logLevel: s.oneOf("FLIP_LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace", "silent"], "info"),
    metrics: readMetricsAddress(s),
  };
}
