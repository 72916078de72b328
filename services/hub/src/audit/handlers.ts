import type { ConnectRouter } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AuditService } from "@flip/gen/flip/hub/v1/audit_pb.js";
import { answer, type HubDeps } from "../rpc/hub-context.js";
import { nextPageToken, readPage } from "../domain/paging.js";
import { loadPeople } from "../identity/people.js";
import { listAuditEntries } from "./queries.js";
import { verifyAuditChain } from "./verify.js";

export function registerAuditHandlers(router: ConnectRouter, { db, log }: HubDeps): void {
  router.service(AuditService, {
    listAuditEntries: (req, ctx) =>
      answer(log, ctx, async () => {
        const page = readPage(req.page);
        const em = db.em();
        const entries = await listAuditEntries(em, { actionPrefix: req.actionPrefix, target: req.target, actor: req.actor, newestFirst: req.newestFirst, beforeSeq: req.beforeSeq }, page);
        const people = await loadPeople(em, entries.map((e) => e.actor));
        return {
          entries: entries.map((e) => ({
            // Only chained entries are listed, so seq and the hashes are set.
            seq: BigInt(e.seq ?? 0),
            at: timestampFromDate(e.at),
            actor: e.actor,
            actorPerson: people.of(e.actor),
            action: e.action,
            target: e.target,
            beforeJson: e.beforeJson ?? "",
            afterJson: e.afterJson ?? "",
            hash: e.hash ?? "",
            prevHash: e.prevHash ?? "",
          })),
          page: { nextPageToken: nextPageToken(page, entries.length) },
        };
      }),
    verifyAuditChain: (_req, ctx) =>
      answer(log, ctx, async () => {
        const r = await verifyAuditChain(db.em());
        if (!r.ok) log.error({ firstBrokenSeq: r.firstBrokenSeq, problem: r.problem }, "audit chain verification failed");
        return { ok: r.ok, entriesChecked: BigInt(r.entriesChecked), firstBrokenSeq: BigInt(r.firstBrokenSeq ?? 0), problem: r.problem ?? "" };
      }),
  });
}
