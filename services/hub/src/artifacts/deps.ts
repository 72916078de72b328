import type { Logger } from "@flip/shared/logging/logger.js";
import type { Database } from "../db/database.js";
import type { HubDeps } from "../rpc/hub-context.js";
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
  /** Bytes an upload writes between durable checkpoints (fsync + recorded offset). */
  checkpointBytes: number;
}

/** 8 MiB: a dropped upload re-sends at most this much after a hub crash, at the cost of one fsync per 8 MiB. */
const CHECKPOINT_BYTES = 8 * 1024 * 1024;

/**
 * The artifact domain over the hub's configured store. Other hub modules (e.g. the aggregator, which
 * writes global weights) call this too; the store is stateless, so several instances share one directory.
 */
export async function artifactDeps({ db, config, log }: HubDeps): Promise<ArtifactDeps> {
  const store = new FsArtifactStore(config.artifactDir);
  await store.init();
  return { db, store, log, maxBytes: config.artifactMaxBytes, leases: new UploadLeases(), checkpointBytes: CHECKPOINT_BYTES };
}
