import { defineEntity, p } from "@mikro-orm/core";

/**
 * One entry of the append-only audit log. Each entry's hash commits to the previous entry's hash and to
 * its own content, so editing or deleting any row breaks the chain from that row on.
 */
export const AuditEntrySchema = defineEntity({
  name: "AuditEntry",
  tableName: "audit_entry",
  properties: {
    seq: p.bigint("number").primary().autoincrement(false),
    at: p.datetime(),
    actor: p.string(),
    action: p.string(),
    target: p.string(),
    beforeJson: p.text().nullable(),
    afterJson: p.text().nullable(),
    prevHash: p.string(),
    hash: p.string(),
  },
});
export class AuditEntry extends AuditEntrySchema.class {}
AuditEntrySchema.setClass(AuditEntry);
