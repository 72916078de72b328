import { TaskKind, TaskKindSchema, type TaskOutput, type TaskSpec } from "@flip/gen/flip/link/v1/tasks_pb.js";

/**
 * Task kinds by short name ("echo", "cohort_query"): how the hub stores them, how operators write
 * gateway capacities, and how logs name them. Derived from the enum, so a new kind needs no edit here.
 */
const NAME_BY_KIND = new Map<TaskKind, string>();
const KIND_BY_NAME = new Map<string, TaskKind>();
for (const v of TaskKindSchema.values) {
  if (v.number === TaskKind.UNSPECIFIED) continue;
  const name = v.name.replace(/^TASK_KIND_/, "").toLowerCase();
  NAME_BY_KIND.set(v.number, name);
  KIND_BY_NAME.set(name, v.number);
}

/** Every known kind's short name, in enum order. */
export const taskKindNames: readonly string[] = [...KIND_BY_NAME.keys()];

export function taskKindName(kind: TaskKind): string {
  return NAME_BY_KIND.get(kind) ?? `kind_${kind}`;
}

export function taskKindFromName(name: string): TaskKind | undefined {
  return KIND_BY_NAME.get(name);
}

/** TaskSpec and TaskOutput oneof cases are the camel-case kind names ("cohortQuery" for cohort_query). */
export function taskKindNameOfCase(c: string): string {
  return c.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);
}

/** The kind a spec asks for, or undefined when no case is set. */
export function taskKindOfSpec(spec: TaskSpec | undefined): TaskKind | undefined {
  const c = spec?.kind.case;
  return c === undefined ? undefined : taskKindFromName(taskKindNameOfCase(c));
}

/** The kind an output answers, or undefined when no case is set. */
export function taskKindOfOutput(output: TaskOutput | undefined): TaskKind | undefined {
  const c = output?.kind.case;
  return c === undefined ? undefined : taskKindFromName(taskKindNameOfCase(c));
}
