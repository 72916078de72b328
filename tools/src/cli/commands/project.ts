import { toJson } from "@bufbuild/protobuf";
import { DecisionStateSchema, FreezeStateSchema, ProjectSchema, ProjectService, ProjectStatusSchema, type Project } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { requireOption, stringOption, UsageError, type CliCommand } from "../command.js";
import { enumLabel, table, when } from "../format.js";

export const projectStatus = (p: Project) => enumLabel(ProjectStatusSchema.values.find((v) => v.number === p.status)?.name, "PROJECT_STATUS_");

export function describeProject(p: Project): string {
  const lines = [
    `${p.name}  (${p.id})`,
    `status: ${projectStatus(p)}   owner: ${p.ownerId}   created: ${when(p.createdAt)}`,
    `members: ${p.memberIds.join(", ") || "-"}`,
    `latest cohort query: ${p.latestQueryId || "-"}`,
  ];
  if (p.decisions.length) {
    lines.push(
      "",
      table(
        ["TRUST", "DECISION", "BY", "AT", "FROZEN COHORT"],
        p.decisions.map((d) => [
          d.trustCode,
          enumLabel(DecisionStateSchema.values.find((v) => v.number === d.state)?.name, "DECISION_STATE_"),
          d.decidedBy || "-",
          when(d.decidedAt),
          `${enumLabel(FreezeStateSchema.values.find((v) => v.number === d.freezeState)?.name, "FREEZE_STATE_")}${d.frozenPersonCount ? ` (${d.frozenPersonCount})` : ""}`,
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
      const { project } = await ctx.client(ProjectService).createProject({ name: requireOption(args, "name"), description: stringOption(args, "description"), members });
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
        projects.length === 0 ? "no projects" : table(["ID", "NAME", "STATUS", "OWNER", "CREATED"], projects.map((p) => [p.id, p.name, projectStatus(p), p.ownerId, when(p.createdAt)])),
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
