import { toJson } from "@bufbuild/protobuf";
import { DecisionState, DecisionStateSchema, FreezeStateSchema, ProjectSchema, ProjectService, ProjectStatusSchema, type Project } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { requireOption, stringOption, UsageError, type CliCommand } from "../command.js";
import { personLabel, table, when, valueLabel } from "../format.js";
import { createOnce } from "../training/retry-once.js";

export const projectStatus = (p: Project) => valueLabel(ProjectStatusSchema, p.status, "PROJECT_STATUS_");

export function describeProject(p: Project): string {
  const lines = [
    `${p.name}  (${p.id})`,
    `status: ${projectStatus(p)}   owner: ${personLabel(p.owner, p.ownerId)}   created: ${when(p.createdAt)}`,
    `members: ${p.memberIds.map((id) => personLabel(p.members.find((m) => m.userId === id), id)).join(", ") || "-"}`,
    `latest cohort query: ${p.latestQueryId || "-"}`,
  ];
  if (p.decisions.length) {
    lines.push(
      "",
      table(
        ["TRUST", "DECISION", "BY", "AT", "FROZEN COHORT"],
        p.decisions.map((d) => [
          d.trustCode,
          valueLabel(DecisionStateSchema, d.state, "DECISION_STATE_"),
          d.decidedBy ? personLabel(d.decider, d.decidedBy) : "-",
          when(d.decidedAt),
          `${valueLabel(FreezeStateSchema, d.freezeState, "FREEZE_STATE_")}${d.frozenPersonCount ? ` (${d.frozenPersonCount})` : ""}`,
        ]),
      ),
    );
  }
  return lines.join("\n");
}

const projectJson = (p: Project | undefined) => (p ? toJson(ProjectSchema, p) : null);

export function oneId(positionals: string[], what: string): string {
  const [id] = positionals;
  if (!id || positionals.length > 1) throw new UsageError(`give exactly one ${what} id`);
  return id;
}

export const projectCommands: CliCommand[] = [
  {
    path: ["project", "create"],
    summary: "Create a project owned by you.",
    usage: "--name <name> [--description <text>] [--member <user id or email>]...",
    options: { name: { type: "string" }, description: { type: "string" }, member: { type: "string", multiple: true } },
    async run(ctx, args) {
      const members = (args.values.member as string[] | undefined) ?? [];
      const client = ctx.client(ProjectService);
      const request = { name: requireOption(args, "name"), description: stringOption(args, "description"), members };
      const { project } = await createOnce((idempotencyKey) => client.createProject({ ...request, idempotencyKey }), (e) => ctx.stderr.write(`the hub did not answer (${e.rawMessage}); retrying once with the same idempotency key\n`));
      ctx.print(`created project ${project?.name} (${project?.id})`, { project: projectJson(project) });
    },
  },
  {
    path: ["project", "list"],
    summary: "List the projects you may see.",
    usage: "",
    async run(ctx) {
      const { projects } = await ctx.client(ProjectService).listProjects({ page: { pageSize: 500 } });
      ctx.print(
        projects.length === 0 ? "no projects" : table(["ID", "NAME", "STATUS", "OWNER", "CREATED"], projects.map((p) => [p.id, p.name, projectStatus(p), personLabel(p.owner, p.ownerId), when(p.createdAt)])),
        { projects: projects.map(projectJson) },
      );
    },
  },
  {
    path: ["project", "get"],
    summary: "Show a project with every trust's decision.",
    usage: "<project id>",
    positionals: true,
    async run(ctx, args) {
      const { project } = await ctx.client(ProjectService).getProject({ projectId: oneId(args.positionals, "project") });
      ctx.print(project ? describeProject(project) : "-", { project: projectJson(project) });
    },
  },
];

function decisionCommand(word: "approve" | "decline"): CliCommand {
  return {
    path: ["project", word],
    summary: `${word === "approve" ? "Approve" : "Decline"} a staged project for one trust (that trust's Trust Admin; the hub Admin only for a trust without one).`,
    usage: "<project id> --trust <code|id> [--reason <text>]",
    positionals: true,
    options: { trust: { type: "string" }, reason: { type: "string" } },
    async run(ctx, args) {
      const { project } = await ctx.client(ProjectService).decideProject({
        projectId: oneId(args.positionals, "project"),
        trust: requireOption(args, "trust"),
        decision: word === "approve" ? DecisionState.APPROVED : DecisionState.DECLINED,
        reason: stringOption(args, "reason"),
      });
      ctx.print(project ? describeProject(project) : "-", { project: projectJson(project) });
    },
  };
}

projectCommands.push(
  {
    path: ["project", "stage"],
    summary: "Stage a project at trusts whose latest cohort answer was usable; it becomes read-only.",
    usage: "<project id> --trust <code|id> [--trust ...]",
    positionals: true,
    options: { trust: { type: "string", multiple: true } },
    async run(ctx, args) {
      const trusts = (args.values.trust as string[] | undefined) ?? [];
      if (trusts.length === 0) throw new UsageError("give at least one --trust");
      const { project } = await ctx.client(ProjectService).stageProject({ projectId: oneId(args.positionals, "project"), trusts });
      ctx.print(project ? describeProject(project) : "-", { project: projectJson(project) });
    },
  },
  {
    path: ["project", "unstage"],
    summary: "Return a staged project to unstaged (pending decisions are dropped).",
    usage: "<project id>",
    positionals: true,
    async run(ctx, args) {
      const { project } = await ctx.client(ProjectService).unstageProject({ projectId: oneId(args.positionals, "project") });
      ctx.print(project ? describeProject(project) : "-", { project: projectJson(project) });
    },
  },
  decisionCommand("approve"),
  decisionCommand("decline"),
  {
    path: ["project", "withdraw"],
    summary:
      "Withdraw one trust's approval (that trust's Trust Admin; the hub Admin only for a trust without one): the trust takes no part " +
      "in new jobs and deletes the research copies of the images it imported. Final.",
    usage: "(<project id> | --project <id>) --trust <code|id> --reason <text>",
    positionals: true,
    options: { project: { type: "string" }, trust: { type: "string" }, reason: { type: "string" } },
    async run(ctx, args) {
      const named = stringOption(args, "project");
      if (named && args.positionals.length > 0) throw new UsageError("give the project id once: as an argument or with --project");
      const { project } = await ctx.client(ProjectService).withdrawApproval({
        projectId: named || oneId(args.positionals, "project"),
        trust: requireOption(args, "trust"),
        reason: requireOption(args, "reason"),
      });
      ctx.print(project ? describeProject(project) : "-", { project: projectJson(project) });
    },
  },
  {
    path: ["project", "decisions"],
    summary: "List projects staged at a trust with its decision, pending first (for Trust Admins).",
    usage: "--trust <code|id>",
    options: { trust: { type: "string" } },
    async run(ctx, args) {
      const { items } = await ctx.client(ProjectService).listTrustDecisions({ trust: requireOption(args, "trust") });
      ctx.print(
        items.length === 0
          ? "no projects staged at this trust"
          : table(
              ["PROJECT", "NAME", "DECISION", "COHORT"],
              items.map((i) => [
                i.project?.id ?? "",
                i.project?.name ?? "",
                valueLabel(DecisionStateSchema, i.decision?.state, "DECISION_STATE_"),
                String(i.cohortCount),
              ]),
            ),
        { items: items.map((i) => ({ project: projectJson(i.project), cohortCount: Number(i.cohortCount) })) },
      );
    },
  },
  {
    path: ["project", "add-member"],
    summary: "Add a member (user id or email) to a project.",
    usage: "<project id> --user <id|email>",
    positionals: true,
    options: { user: { type: "string" } },
    async run(ctx, args) {
      const { project } = await ctx.client(ProjectService).addProjectMember({ projectId: oneId(args.positionals, "project"), user: requireOption(args, "user") });
      ctx.print(project ? describeProject(project) : "-", { project: projectJson(project) });
    },
  },
  {
    path: ["project", "remove-member"],
    summary: "Remove a member from a project.",
    usage: "<project id> --user <id|email>",
    positionals: true,
    options: { user: { type: "string" } },
    async run(ctx, args) {
      const { project } = await ctx.client(ProjectService).removeProjectMember({ projectId: oneId(args.positionals, "project"), user: requireOption(args, "user") });
      ctx.print(project ? describeProject(project) : "-", { project: projectJson(project) });
    },
  },
  {
    path: ["project", "delete"],
    summary: "Soft-delete a project.",
    usage: "<project id>",
    positionals: true,
    async run(ctx, args) {
      const projectId = oneId(args.positionals, "project");
      await ctx.client(ProjectService).deleteProject({ projectId });
      ctx.print(`project ${projectId} deleted`, { projectId, deleted: true });
    },
  },
);
