import type { ConnectRouter } from "@connectrpc/connect";
import { CreateProjectRequestSchema, CreateProjectResponseSchema, DecisionState, ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { answer, callerOf, type HubDeps } from "../rpc/hub-context.js";
import { nextPageToken, readPage } from "../domain/paging.js";
import { createCallOf, createOnce } from "../rpc/idempotency-keys.js";
import { visibleProject } from "./access.js";
import { listTrustDecisions } from "./decisions.js";
import { deleteProject, setProjectMember, updateProject } from "./edit.js";
import { decideProject, stageProject, unstageProject, withdrawApproval } from "./lifecycle.js";
import { createProject, listVisibleProjects } from "./projects.js";
import { projectsToProto, projectToProto } from "./to-proto.js";

const DECISION_NAME = { [DecisionState.APPROVED]: "approved", [DecisionState.DECLINED]: "declined" } as const;

/** ProjectService: projects, members, staging and each trust's decision. */
export function registerProjectHandlers(router: ConnectRouter, { db, config, log }: HubDeps): void {
  router.service(ProjectService, {
    createProject: (req, ctx) =>
      answer(log, ctx, () =>
        createOnce(db.em(), createCallOf(ctx, CreateProjectRequestSchema, req, CreateProjectResponseSchema, config.idempotencyKeyTtlMs), async (em) => {
          const project = await createProject(em, callerOf(ctx), { name: req.name, description: req.description, memberIds: req.members });
          log.info({ projectId: project.id }, "project created");
          return { project: await projectToProto(em, project) };
        }),
      ),
    getProject: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        return { project: await projectToProto(em, await visibleProject(em, callerOf(ctx), req.projectId)) };
      }),
    listProjects: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        const page = readPage(req.page);
        const projects = await listVisibleProjects(em, callerOf(ctx), page, req.includeDeleted);
        return { projects: await projectsToProto(em, projects), page: { nextPageToken: nextPageToken(page, projects.length) } };
      }),
    updateProject: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        const project = await updateProject(em, callerOf(ctx), req.projectId, { name: req.name, description: req.description, expectedVersion: req.expectedVersion });
        return { project: await projectToProto(em, project) };
      }),
    deleteProject: (req, ctx) =>
      answer(log, ctx, async () => {
        await deleteProject(db.em(), callerOf(ctx), req.projectId);
        return {};
      }),
    addProjectMember: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        return { project: await projectToProto(em, await setProjectMember(em, callerOf(ctx), req.projectId, req.user, true)) };
      }),
    removeProjectMember: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        return { project: await projectToProto(em, await setProjectMember(em, callerOf(ctx), req.projectId, req.user, false)) };
      }),
    stageProject: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        const project = await stageProject(em, callerOf(ctx), req.projectId, req.trusts);
        log.info({ projectId: project.id }, "project staged");
        return { project: await projectToProto(em, project) };
      }),
    unstageProject: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        return { project: await projectToProto(em, await unstageProject(em, callerOf(ctx), req.projectId)) };
      }),
    decideProject: (req, ctx) =>
      answer(log, ctx, async () => {
        const decision = DECISION_NAME[req.decision as keyof typeof DECISION_NAME] ?? "pending";
        const em = db.em();
        const project = await decideProject(em, callerOf(ctx), req.projectId, req.trust, decision, req.reason);
        log.info({ projectId: project.id, decision }, "project decision recorded");
        return { project: await projectToProto(em, project) };
      }),
    withdrawApproval: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        const project = await withdrawApproval(em, callerOf(ctx), req.projectId, req.trust, req.reason);
        log.info({ projectId: project.id }, "project approval withdrawn");
        return { project: await projectToProto(em, project) };
      }),
    listTrustDecisions: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        const rows = await listTrustDecisions(em, callerOf(ctx), req.trust);
        const projects = await projectsToProto(em, rows.map((r) => r.project));
        return {
          items: rows.map((r, i) => ({
            project: projects[i],
            decision: projects[i]!.decisions.find((d) => d.trustId === r.decision.trustId),
            cohortCount: BigInt(r.cohortCount),
          })),
        };
      }),
  });
}
