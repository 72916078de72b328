import type { Logger } from "@flip/shared/logging/logger.js";
import { downloadArtifact, uploadArtifact, type ArtifactClient } from "../artifacts/index.js";

/** How the training side moves artifacts to and from the hub (tests hand in a local stand-in). */
export interface ArtifactTransfers {
  /** Downloads an artifact to `destination` (verified, then renamed into place). */
  download(artifactId: string, destination: string, signal: AbortSignal): Promise<void>;
  /** Uploads a model update under `artifactId` (resuming one an earlier attempt began). */
  uploadUpdate(file: string, artifactId: string, taskId: string, signal: AbortSignal): Promise<void>;
}

/** Transfers through the hub's ArtifactService: resumable, checksummed. */
export function hubArtifactTransfers(client: ArtifactClient, log: Logger): ArtifactTransfers {
  return {
    async download(artifactId, destination, signal) {
      await downloadArtifact(client, artifactId, destination, { signal, log });
    },
    async uploadUpdate(file, artifactId, taskId, signal) {
      await uploadArtifact(client, { artifactId, purpose: "model-update", taskId, source: file }, { signal, log });
    },
  };
}
