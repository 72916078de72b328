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
import { groupBy } from "../db/group-rows.js";

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

/**
 * The full project messages: members and every trust's decision. Members, decisions and trusts of all
 * projects are loaded together: three queries for a whole page, not three per item.
 */
export async function projectsToProto(em: EntityManager, projects: readonly Project[]): Promise<ProjectMessage[]> {
  if (projects.length === 0) return [];
  const projectIds = projects.map((p) => p.id);
  const [members, decisions] = await Promise.all([
    em.find(ProjectMember, { projectId: { $in: projectIds } }, { orderBy: { addedAt: "asc" } }),
    em.find(ProjectTrust, { projectId: { $in: projectIds } }),
  ]);
  const trustIds = [...new Set(decisions.map((d) => d.trustId))];
  const trusts = trustIds.length ? await em.find(Trust, { id: { $in: trustIds } }) : [];
  const codeOf = new Map(trusts.map((t) => [t.id, t.code]));
  const membersOf = groupBy(members, (m) => m.projectId);
  const decisionsOf = groupBy(decisions, (d) => d.projectId);
  return projects.map((p) => toMessage(p, membersOf.get(p.id) ?? [], decisionsOf.get(p.id) ?? [], codeOf));
}

/** One project as a message (see projectsToProto). */
export async function projectToProto(em: EntityManager, p: Project): Promise<ProjectMessage> {
  const [message] = await projectsToProto(em, [p]);
  return message!;
}

function toMessage(p: Project, members: readonly ProjectMember[], decisions: readonly ProjectTrust[], codeOf: ReadonlyMap<string, string>): ProjectMessage {
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
