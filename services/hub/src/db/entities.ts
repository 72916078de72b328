import { AuditEntrySchema } from "../audit/entities.js";
import { TrustSchema } from "../trusts/entities.js";

/** Every entity the hub's ORM knows. */
export const entities = [TrustSchema, AuditEntrySchema];
