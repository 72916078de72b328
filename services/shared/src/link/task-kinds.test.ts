import test from "ava";
import { create } from "@bufbuild/protobuf";
import { TaskKind, TaskOutputSchema, TaskSpecSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindFromName, taskKindName, taskKindNames, taskKindOfOutput, taskKindOfSpec } from "./task-kinds.js";

test("every task kind has a short snake-case name that maps back to it", (t) => {
  t.true(taskKindNames.includes("echo"));
  t.true(taskKindNames.includes("cohort_query"));
  for (const name of taskKindNames) t.is(taskKindName(taskKindFromName(name)!), name);
  t.is(taskKindFromName("unspecified"), undefined);
});

test("the kind of a spec and of an output follows the oneof case", (t) => {
  t.is(taskKindOfSpec(create(TaskSpecSchema, { kind: { case: "echo", value: { message: "hi" } } })), TaskKind.ECHO);
  t.is(taskKindOfSpec(create(TaskSpecSchema, { kind: { case: "cohortQuery", value: {} } })), TaskKind.COHORT_QUERY);
  t.is(taskKindOfSpec(create(TaskSpecSchema, {})), undefined);
  t.is(taskKindOfOutput(create(TaskOutputSchema, { kind: { case: "freezeCohort", value: {} } })), TaskKind.FREEZE_COHORT);
});
