import type { Logger } from "@flip/shared/logging/logger.js";
import type { Database } from "../db/database.js";
import type { HubMetrics } from "../metrics/hub-metrics.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { BackgroundSyncs } from "./durability.js";
import { FsArtifactStore } from "./fs-store.js";
import type { ArtifactStore } from "./store.js";
import { UploadLeases } from "./upload-leases.js";

/** What the artifact domain functions need. */
export interface ArtifactDeps {
  db: Database;
  store: ArtifactStore;
  log: Logger;
  /** Largest artifact accepted, in bytes. */
  maxBytes: number;
  leases: UploadLeases;
  /** Bytes an upload writes between recorded offsets (besides one every few seconds, and one when a stream ends or breaks). */
  checkpointBytes: number;
  /** Makes completed artifacts durable after they were answered. */
  syncs: BackgroundSyncs;
  /** Counts the bytes uploads receive and downloads send. */
  metrics: Pick<HubMetrics, "artifactBytes">;
}

/**
 * 64 MiB: only a hub crash costs a resuming client more than the chunk in flight (a broken stream
 * records its offset as it ends), and then at most this much; recording is a row update, no fsync.
 */
const CHECKPOINT_BYTES = 64 * 1024 * 1024;

/**
 * The artifact domain over the hub's configured store. Other hub modules (e.g. the aggregator, which
 * writes global weights) call this too; the store is stateless, so several instances share one directory.
 */
export async function artifactDeps({ db, config, log, metrics }: HubDeps): Promise<ArtifactDeps> {
  const store = new FsArtifactStore(config.artifactDir);
  await store.init();
  return { db, store, log, maxBytes: config.artifactMaxBytes, leases: new UploadLeases(), checkpointBytes: CHECKPOINT_BYTES, syncs: new BackgroundSyncs(db, store, log), metrics };
}
