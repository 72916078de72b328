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
import { PersonRefSchema } from "@flip/gen/flip/hub/v1/people_pb.js";
import { loadPeople, type People } from "../identity/people.js";
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
 * The full project messages: members and every trust's decision, with the people behind the owner,
 * members and deciders. Members, decisions, trusts and people of all projects are loaded together: four
 * queries for a whole page, not four per item.
 */
export async function projectsToProto(em: EntityManager, projects: readonly Project[]): Promise<ProjectMessage[]> {
  if (projects.length === 0) return [];
  const projectIds = projects.map((p) => p.id);
  const [members, decisions] = await Promise.all([
    em.find(ProjectMember, { projectId: { $in: projectIds } }, { orderBy: { addedAt: "asc" } }),
    em.find(ProjectTrust, { projectId: { $in: projectIds } }),
  ]);
  const trustIds = [...new Set(decisions.map((d) => d.trustId))];
  const [trusts, people] = await Promise.all([
    trustIds.length ? em.find(Trust, { id: { $in: trustIds } }) : [],
    loadPeople(em, [...projects.map((p) => p.ownerId), ...members.map((m) => m.userId), ...decisions.map((d) => d.decidedBy)]),
  ]);
  const codeOf = new Map(trusts.map((t) => [t.id, t.code]));
  const membersOf = groupBy(members, (m) => m.projectId);
  const decisionsOf = groupBy(decisions, (d) => d.projectId);
  return projects.map((p) => toMessage(p, membersOf.get(p.id) ?? [], decisionsOf.get(p.id) ?? [], codeOf, people));
}

/** One project as a message (see projectsToProto). */
export async function projectToProto(em: EntityManager, p: Project): Promise<ProjectMessage> {
  const [message] = await projectsToProto(em, [p]);
  return message!;
}

function toMessage(p: Project, members: readonly ProjectMember[], decisions: readonly ProjectTrust[], codeOf: ReadonlyMap<string, string>, people: People): ProjectMessage {
  return create(ProjectMessageSchema, {
    id: p.id,
    name: p.name,
    description: p.description,
    ownerId: p.ownerId,
    owner: people.of(p.ownerId),
    memberIds: members.map((m) => m.userId),
    members: members.map((m) => people.of(m.userId) ?? create(PersonRefSchema, { userId: m.userId })),
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
        decider: people.of(d.decidedBy),
        stagedAt: timestampFromDate(d.stagedAt),
      }))
      .sort((a, b) => a.trustCode.localeCompare(b.trustCode)),
  });
}
