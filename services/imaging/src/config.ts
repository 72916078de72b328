import * as path from "node:path";
import { ConfigError, SettingsReader, type Env } from "@flip/shared/config/settings.js";
import { readMetricsAddress, type MetricsAddress } from "@flip/shared/telemetry/metrics.js";
import { parseImportWindow, type ImportWindow } from "./imports/import-window.js";
import { parsePacsConfig, type PacsConfig } from "./pacs/pacs-config.js";

/** The research store: an Orthanc that only this service can reach. */
export interface ResearchStoreConfig {
  url: string;
  username: string;
  /** Secret: never logged. */
  password: string;
}

/** How imports are paced, as hospitals demand. */
export interface ImportPacing {
  /** Studies imported at once. */
  concurrency: number;
  /** Instances stored into the research store at once, per study. */
  storeConcurrency: number;
  /** When imports may run (local time of this process), e.g. 20:00-06:00; always when unset. */
  window: ImportWindow | undefined;
  /** Tries per study before it is marked failed. */
  maxAttempts: number;
  /** The first retry waits this long; each next one twice as long (up to an hour). */
  retryBaseMs: number;
}

export interface ImagingConfig {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** The service's own database (the project ↔ accession ↔ pseudonymised study index). */
  databaseUrl: string;
  /** The trust-internal service key callers present as a bearer token (secret). */
  internalKey: string;
  /** The trust's data-access service: the only source of a project's accession numbers. */
  dataAccessUrl: string;
  pacs: PacsConfig;
  store: ResearchStoreConfig;
  /** NIfTI volumes, the pseudonym key (when not given) and scratch space. */
  dataDir: string;
  /** The trust's secret for pseudonyms (≥ 32 bytes); made once in dataDir (0600) when no file is given. */
  pseudonymKeyFile: string;
  pacing: ImportPacing;
  logLevel: string;
  /** Where `GET /metrics` is served (FLIP_METRICS_ADDR); metrics are off when absent. */
  metrics?: MetricsAddress | undefined;
}

/** Reads the service's settings once; throws ConfigError naming the first bad setting. */
export function readImagingConfig(env: Env): ImagingConfig {
  const s = new SettingsReader(env);
  const { host, port } = s.address("FLIP_IMAGING_ADDR", "127.0.0.1:7782");
  const databaseUrl = s.url("FLIP_IMAGING_DATABASE_URL", undefined, ["postgres", "postgresql"]);
  if (databaseUrl === undefined) throw new ConfigError("FLIP_IMAGING_DATABASE_URL", "the imaging service's own database, e.g. postgres://imaging:pass@db:5432/imaging", "");
  const internalKey = s.optionalString("FLIP_TRUST_INTERNAL_KEY");
  if (internalKey === undefined || internalKey.length < 16) {
    throw new ConfigError("FLIP_TRUST_INTERNAL_KEY", "the trust-internal service key, at least 16 characters", internalKey === undefined ? "" : "<hidden>");
  }
  const dataAccessUrl = s.url("FLIP_DATA_ACCESS_URL", undefined, ["http", "https"]);
  if (dataAccessUrl === undefined) throw new ConfigError("FLIP_DATA_ACCESS_URL", "the trust's data-access service, e.g. http://127.0.0.1:7781 (the source of accession numbers)", "");

  // FLIP_IMAGING_PACS_FILE names a file holding the JSON, as for every setting.
  const pacsRaw = s.optionalString("FLIP_IMAGING_PACS");
  const pacsSetting = env.FLIP_IMAGING_PACS_FILE ? "FLIP_IMAGING_PACS_FILE" : "FLIP_IMAGING_PACS";
  if (pacsRaw === undefined) {
    throw new ConfigError("FLIP_IMAGING_PACS", 'the PACS as JSON, e.g. {"protocol":"dicomweb","url":"http://pacs:8042/dicom-web","username":"flip","passwordFile":"/run/secrets/pacs"}', "");
  }
  const pacs = parsePacsConfig(pacsRaw, pacsSetting);

  const storeUrl = s.url("FLIP_IMAGING_STORE_URL", undefined, ["http", "https"]);
  if (storeUrl === undefined) throw new ConfigError("FLIP_IMAGING_STORE_URL", "the research store's Orthanc REST root, e.g. http://research-store:8042", "");
  const storeUser = s.string("FLIP_IMAGING_STORE_USER", "flip");
  // FLIP_IMAGING_STORE_PASSWORD_FILE works too, as for every setting.
  const storePassword = s.optionalString("FLIP_IMAGING_STORE_PASSWORD") ?? "";

  const dataDir = path.resolve(s.string("FLIP_IMAGING_DATA_DIR", "imaging-data"));
  const windowRaw = s.optionalString("FLIP_IMAGING_WINDOW");
  return {
    host,
    port,
    databaseUrl,
    internalKey,
    dataAccessUrl,
    pacs,
    store: { url: storeUrl.replace(/\/+$/, ""), username: storeUser, password: storePassword },
    dataDir,
    pseudonymKeyFile: path.resolve(s.string("FLIP_IMAGING_PSEUDONYM_KEY_FILE", path.join(dataDir, "pseudonym.key"))),
    pacing: {
      concurrency: s.int("FLIP_IMAGING_CONCURRENCY", 2, 1, 64),
      storeConcurrency: s.int("FLIP_IMAGING_STORE_CONCURRENCY", 4, 1, 64),
      window: windowRaw === undefined ? undefined : parseImportWindow(windowRaw, "FLIP_IMAGING_WINDOW"),
      maxAttempts: s.int("FLIP_IMAGING_MAX_ATTEMPTS", 5, 1, 100),
      retryBaseMs: s.int("FLIP_IMAGING_RETRY_BASE_MS", 10_000, 10, 3_600_000),
    },
    logLevel: s.oneOf("FLIP_LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace", "silent"], "info"),
    metrics: readMetricsAddress(s),
  };
}
