import { defineEntity, p } from "@mikro-orm/core";

export const PROJECT_STATUSES = ["unstaged", "staged", "approved"] as const;
export type ProjectStatusName = (typeof PROJECT_STATUSES)[number];

/** A research project: the unit trusts approve or decline. Deleting is soft (`deletedAt`). */
export const ProjectSchema = defineEntity({
  name: "Project",
  tableName: "project",
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    name: p.string(),
    description: p.text(),
    /** A user id, or "bootstrap-admin" for projects made with the bootstrap token. */
    ownerId: p.string(),
    status: p.enum(PROJECT_STATUSES),
    createdAt: p.datetime().onCreate(() => new Date()),
    deletedAt: p.datetime().nullable(),
    latestQueryId: p.uuid().nullable(),
    version: p.integer().version(),
  },
});
export class Project extends ProjectSchema.class {}
ProjectSchema.setClass(Project);

/** A project member (besides the owner). */
export const ProjectMemberSchema = defineEntity({
  name: "ProjectMember",
  tableName: "project_member",
  properties: {
    projectId: p.uuid().primary(),
    userId: p.string().primary(),
    addedAt: p.datetime().onCreate(() => new Date()),
  },
  primaryKeys: ["projectId", "userId"],
});
export class ProjectMember extends ProjectMemberSchema.class {}
ProjectMemberSchema.setClass(ProjectMember);

/** "withdrawn": the trust approved, then withdrew its approval (final). */
export const DECISION_STATES = ["pending", "approved", "declined", "withdrawn"] as const;
export type DecisionStateName = (typeof DECISION_STATES)[number];
export const FREEZE_STATES = ["not_requested", "pending", "frozen", "suppressed", "failed"] as const;
export type FreezeStateName = (typeof FREEZE_STATES)[number];

/** A trust's decision on a staged project, and the state of the cohort it froze on approval. */
export const ProjectTrustSchema = defineEntity({
  name: "ProjectTrust",
  tableName: "project_trust",
  properties: {
    projectId: p.uuid().primary(),
    trustId: p.uuid().primary(),
    state: p.enum(DECISION_STATES),
    decidedAs: p.string().nullable(),
    decidedBy: p.string().nullable(),
    decidedAt: p.datetime().nullable(),
    reason: p.text().nullable(),
    freezeState: p.enum(FREEZE_STATES),
    freezeTaskId: p.uuid().nullable(),
    frozenPersonCount: p.bigint("number").nullable(),
    stagedAt: p.datetime().onCreate(() => new Date()),
  },
  primaryKeys: ["projectId", "trustId"],
});
export class ProjectTrust extends ProjectTrustSchema.class {}
ProjectTrustSchema.setClass(ProjectTrust);
