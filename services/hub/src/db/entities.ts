import { AuditEntrySchema } from "../audit/entities.js";
import { TrustSchema } from "../trusts/entities.js";
import { TaskAttemptSchema, TaskSchema } from "../tasks/entities.js";
import { TrustLinkSchema } from "../link/entities.js";

/** Every entity the hub's ORM knows. */
export const entities = [TrustSchema, AuditEntrySchema, TaskSchema, TaskAttemptSchema, TrustLinkSchema];
