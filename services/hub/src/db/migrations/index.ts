import type { MigrationObject } from "@mikro-orm/core";
import { M0001TrustsAndAudit } from "./m0001-trusts-and-audit.js";
import { M0002Tasks } from "./m0002-tasks.js";
import { M0003Identity } from "./m0003-identity.js";
import { M0004Artifacts } from "./m0004-artifacts.js";
import { M0005ProjectsAndCohorts } from "./m0005-projects-and-cohorts.js";
import { M0006Governance } from "./m0006-governance.js";
import { M0007AuditSequencer } from "./m0007-audit-sequencer.js";
import { M0008ArtifactSync } from "./m0008-artifact-sync.js";
import { M0009Training } from "./m0009-training.js";
import { M0010Imaging } from "./m0010-imaging.js";
import { M0011FairnessAndIdempotency } from "./m0011-fairness-and-idempotency.js";
import { M0012GatewayLinks } from "./m0012-gateway-links.js";
import { M0013TrainingTraces } from "./m0013-training-traces.js";

/** Every hub migration, in order. Append new ones; never edit one that has shipped. */
export const migrations: MigrationObject[] = [
  { name: "m0001-trusts-and-audit", class: M0001TrustsAndAudit },
  { name: "m0002-tasks", class: M0002Tasks },
  { name: "m0003-identity", class: M0003Identity },
  { name: "m0004-artifacts", class: M0004Artifacts },
  { name: "m0005-projects-and-cohorts", class: M0005ProjectsAndCohorts },
  { name: "m0006-governance", class: M0006Governance },
  { name: "m0007-audit-sequencer", class: M0007AuditSequencer },
  { name: "m0008-artifact-sync", class: M0008ArtifactSync },
  { name: "m0009-training", class: M0009Training },
  { name: "m0010-imaging", class: M0010Imaging },
  { name: "m0011-fairness-and-idempotency", class: M0011FairnessAndIdempotency },
  { name: "m0012-gateway-links", class: M0012GatewayLinks },
  { name: "m0013-training-traces", class: M0013TrainingTraces },
];
