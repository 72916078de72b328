import { defineEntity, p } from "@mikro-orm/core";

/**
 * One entry of the append-only audit log. Appending stores the content under an insertion id; the
 * sequencer then chains it: `seq` is its position in the chain and `hash` commits to the previous entry's
 * hash and to this entry's content, so editing or deleting any chained row breaks the chain from that row
 * on. `seq`, `prevHash` and `hash` are null until then (milliseconds after the append commits).
 */
export const AuditEntrySchema = defineEntity({
  name: "AuditEntry",
  tableName: "audit_entry",
  properties: {
    id: p.bigint("number").primary(),
    seq: p.bigint("number").nullable().unique(),
    at: p.datetime(),
    actor: p.string(),
    action: p.string(),
    target: p.string(),
    beforeJson: p.text().nullable(),
    afterJson: p.text().nullable(),
    prevHash: p.string().nullable(),
    hash: p.string().nullable(),
  },
});
export class AuditEntry extends AuditEntrySchema.class {}
AuditEntrySchema.setClass(AuditEntry);
