import { readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SettingsReader, ConfigError, type Env } from "@flip/shared/config/settings.js";
import { readMetricsAddress, type MetricsAddress } from "@flip/shared/telemetry/metrics.js";
import { readConsoleConfig, type ConsoleConfig } from "./console/console-config.js";
import { readIdentityConfig, type IdentityConfig } from "./identity/identity-config.js";
import type { GlobalLoginLimit } from "./identity/login-throttle.js";

export interface HubConfig {
  host: string;
  port: number;
  /** External PostgreSQL; when absent an embedded server is started with its data in `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  embeddedPostgresPort: number;
  /** Bootstrap admin token: accepted only until the first Admin user exists (identity/README.md). */
  adminToken: string | undefined;
  tls: { cert: string; key: string } | undefined;
  logLevel: string;
  /** How often each side of a trust link sends a heartbeat. */
  heartbeatIntervalMs: number;
  /** A trust with no heartbeat for this long is offline. */
  offlineAfterMs: number;
  /** Name of this hub replica, for logs and the link's Welcome. */
  instanceId: string;
  /** Seconds between sweeps for expired task deadlines. */
  sweepIntervalMs: number;
  /** Sessions, token lifetimes, sign-in throttling and single sign-on. */
  identity: IdentityConfig;
  /** Sign-in attempts this replica accepts across all accounts (beside the per-account throttle). */
  loginGlobalLimit: GlobalLoginLimit;
  /** Cohort queries one user may have waiting for answers at once; more are refused until some finish. */
  maxCohortQueriesPerUser: number;
  /** How long a create request's idempotency key is remembered (a retry after that creates again). */
  idempotencyKeyTtlMs: number;
  /** Where artifacts (model weights, results) are stored; default `<dataDir>/artifacts`. */
  artifactDir: string;
  /** Largest artifact a trust may upload, in bytes. */
  artifactMaxBytes: number;
  /**
   * Key that seals TOTP secrets in the database (64 hex characters). Default with the embedded database:
   * `<dataDir>/secrets.key`, created on first start. With DATABASE_URL it must be set explicitly (the same
   * file on every replica); unset, secrets are stored unsealed and the hub warns.
   */
  secretsKeyFile: { path: string; createIfMissing: boolean } | undefined;
  /** Where `GET /metrics` is served (FLIP_METRICS_ADDR); metrics are off when absent. */
  metrics: MetricsAddress | undefined;
  /** The web console served at GET / on the hub's address. */
  console: ConsoleConfig;
}

/** Reads the hub's settings once; throws ConfigError naming the first bad setting. */
export function readHubConfig(env: Env): HubConfig {
  const s = new SettingsReader(env);
  const { host, port } = s.address("FLIP_HUB_ADDR", "127.0.0.1:7770");
  const certPath = s.optionalString("FLIP_HUB_TLS_CERT");
  const keyPath = s.optionalString("FLIP_HUB_TLS_KEY");
  if (Boolean(certPath) !== Boolean(keyPath)) {
    throw new ConfigError(certPath ? "FLIP_HUB_TLS_KEY" : "FLIP_HUB_TLS_CERT", "set together with its pair (PEM file paths)", "");
  }
  const readPem = (name: string, p: string) => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      throw new ConfigError(name, "a readable PEM file", p);
    }
  };
  const adminToken = s.optionalString("FLIP_ADMIN_TOKEN");
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new ConfigError("FLIP_ADMIN_TOKEN", "at least 16 characters", "<hidden>");
  }
  const heartbeatIntervalMs = s.int("FLIP_HEARTBEAT_INTERVAL_MS", 10_000, 100, 300_000);
  const databaseUrl = s.url("DATABASE_URL", undefined, ["postgres", "postgresql"]);
  const dataDir = s.string("FLIP_HUB_DATA_DIR", ".flip/hub");
  const keyFile = s.optionalString("FLIP_SECRETS_KEY_FILE");
  return {
    host,
    port,
    databaseUrl,
    dataDir,
    embeddedPostgresPort: s.int("FLIP_EMBEDDED_PG_PORT", 0, 0, 65535),
    adminToken,
    tls: certPath && keyPath ? { cert: readPem("FLIP_HUB_TLS_CERT", certPath), key: readPem("FLIP_HUB_TLS_KEY", keyPath) } : undefined,
    logLevel: s.oneOf("FLIP_LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace", "silent"], "info"),
    heartbeatIntervalMs,
    offlineAfterMs: s.int("FLIP_OFFLINE_AFTER_MS", heartbeatIntervalMs * 3, heartbeatIntervalMs, 3_600_000),
    instanceId: s.string("FLIP_HUB_INSTANCE", `${os.hostname()}-${process.pid}`),
    sweepIntervalMs: s.int("FLIP_SWEEP_INTERVAL_MS", 1_000, 50, 60_000),
    identity: readIdentityConfig(s),
    loginGlobalLimit: { perSecond: s.int("FLIP_LOGIN_GLOBAL_PER_S", 20, 1, 100_000), burst: s.int("FLIP_LOGIN_GLOBAL_BURST", 50, 1, 1_000_000) },
    maxCohortQueriesPerUser: s.int("FLIP_MAX_COHORT_QUERIES_PER_USER", 4, 1, 1000),
    idempotencyKeyTtlMs: s.int("FLIP_IDEMPOTENCY_KEY_TTL_S", 24 * 3600, 60, 30 * 24 * 3600) * 1000,
    artifactDir: s.string("FLIP_HUB_ARTIFACT_DIR", path.join(s.string("FLIP_HUB_DATA_DIR", ".flip/hub"), "artifacts")),
    artifactMaxBytes: s.int("FLIP_ARTIFACT_MAX_BYTES", 8 * 1024 ** 3, 1, Number.MAX_SAFE_INTEGER),
    secretsKeyFile: keyFile
      ? { path: keyFile, createIfMissing: false }
      : databaseUrl
        ? undefined
        : { path: path.join(dataDir, "secrets.key"), createIfMissing: true },
    metrics: readMetricsAddress(s),
    console: readConsoleConfig(s),
  };
}
