import { AuditEntrySchema } from "../audit/entities.js";
import { ArtifactAccessSchema, ArtifactSchema } from "../artifacts/entities.js";
import { TrustSchema } from "../trusts/entities.js";
import { TaskAttemptSchema, TaskSchema } from "../tasks/entities.js";
import { TrustLinkSchema } from "../link/entities.js";
import { identityEntities } from "../identity/entities.js";

import { ProjectMemberSchema, ProjectSchema, ProjectTrustSchema } from "../projects/entities.js";
import { CohortAnswerSchema, CohortQuerySchema } from "../cohorts/entities.js";

/** Every entity the hub's ORM knows. */
export const entities = [TrustSchema, AuditEntrySchema, TaskSchema, TaskAttemptSchema, TrustLinkSchema, ...identityEntities, ProjectSchema, ProjectMemberSchema, ProjectTrustSchema, CohortQuerySchema, CohortAnswerSchema, ArtifactSchema, ArtifactAccessSchema];
