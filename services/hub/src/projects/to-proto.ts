import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/postgresql";
import {
  DecisionMaker,
  DecisionState,
  FreezeState,
  ProjectSchema as ProjectMessageSchema,
  ProjectStatus,
  type Project as ProjectMessage,
} from "@flip/gen/flip/hub/v1/projects_pb.js";
import { Trust } from "../trusts/entities.js";
import { Project, ProjectMember, ProjectTrust, type DecisionStateName, type FreezeStateName, type ProjectStatusName } from "./entities.js";

const STATUS: Record<ProjectStatusName, ProjectStatus> = {
  unstaged: ProjectStatus.UNSTAGED,
  staged: ProjectStatus.STAGED,
  approved: ProjectStatus.APPROVED,
};
const DECISION: Record<DecisionStateName, DecisionState> = {
  pending: DecisionState.PENDING,
  approved: DecisionState.APPROVED,
  declined: DecisionState.DECLINED,
  withdrawn: DecisionState.WITHDRAWN,
};
const FREEZE: Record<FreezeStateName, FreezeState> = {
  not_requested: FreezeState.NOT_REQUESTED,
  pending: FreezeState.PENDING,
  frozen: FreezeState.FROZEN,
  suppressed: FreezeState.SUPPRESSED,
  failed: FreezeState.FAILED,
};

/** The full project message: members and every trust's decision. */
export async function projectToProto(em: EntityManager, p: Project): Promise<ProjectMessage> {
  const [members, decisions] = await Promise.all([
    em.find(ProjectMember, { projectId: p.id }, { orderBy: { addedAt: "asc" } }),
    em.find(ProjectTrust, { projectId: p.id }),
  ]);
  const trusts = decisions.length ? await em.find(Trust, { id: { $in: decisions.map((d) => d.trustId) } }) : [];
  const codeOf = new Map(trusts.map((t) => [t.id, t.code]));
  return create(ProjectMessageSchema, {
    id: p.id,
    name: p.name,
    description: p.description,
    ownerId: p.ownerId,
    memberIds: members.map((m) => m.userId),
    status: STATUS[p.status],
    createdAt: timestampFromDate(p.createdAt),
    deleted: Boolean(p.deletedAt),
    latestQueryId: p.latestQueryId ?? "",
    version: p.version,
    decisions: decisions
      .map((d) => ({
        trustId: d.trustId,
        trustCode: codeOf.get(d.trustId) ?? "",
        state: DECISION[d.state],
        decidedAs: d.decidedAs === "site" ? DecisionMaker.SITE : d.decidedAs === "hub" ? DecisionMaker.HUB : DecisionMaker.UNSPECIFIED,
        decidedBy: d.decidedBy ?? "",
        decidedAt: d.decidedAt ? timestampFromDate(d.decidedAt) : undefined,
        frozenPersonCount: BigInt(d.frozenPersonCount ?? 0),
        freezeState: FREEZE[d.freezeState],
        reason: d.reason ?? "",
      }))
      .sort((a, b) => a.trustCode.localeCompare(b.trustCode)),
  });
}
