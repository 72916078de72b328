import test from "ava";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { CreateUserRequestSchema, LoginRequestSchema, Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { DeleteProjectRequestSchema } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { CreateEchoTaskRequestSchema } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { SubmitCohortQueryRequestSchema } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ListMetricsRequestSchema } from "@flip/gen/flip/hub/v1/training_pb.js";
import { ReportEventRequestSchema, WriteLogRequestSchema } from "@flip/gen/flip/runtime/v1/runtime_pb.js";
import { ConnectRequestSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import { GetCohortStatisticsRequestSchema } from "@flip/gen/flip/dataaccess/v1/data_access_pb.js";
import { findViolation } from "./validate-message.js";

const UUID = "0b0e6c1e-9d4f-4f6e-8a43-5d2c7b7e2f10";

function violation<D extends DescMessage>(desc: D, init: MessageInitShape<D>) {
  return findViolation(desc, create(desc, init));
}

test("a valid request has no violation", (t) => {
  t.is(violation(LoginRequestSchema, { email: "ada@hospital.nhs.uk", password: "pässwörd\twith tab", totpCode: "123456" }), undefined);
  t.is(violation(DeleteProjectRequestSchema, { projectId: UUID.toUpperCase() }), undefined);
  t.is(violation(DeleteProjectRequestSchema, {}), undefined, "an empty id is 'not given', for the handler to require");
});

test("an email longer than 254 characters is named with its limit", (t) => {
  t.deepEqual(violation(LoginRequestSchema, { email: `${"a".repeat(3000)}@x.org` }), { path: "email", problem: "longer than 254 characters" });
});

test("a NUL byte or other control character in any string is refused, without echoing the value", (t) => {
  const v = violation(LoginRequestSchema, { email: "a@b.org", password: "secret\0" });
  t.is(v?.path, "password");
  t.regex(v!.problem, /U\+0000/);
  t.notRegex(v!.problem, /secret/);
  t.is(violation(SubmitCohortQueryRequestSchema, { projectId: UUID, sql: "select 1\x1b" })?.path, "sql");
});

test("ids the hub stores as UUIDs must be UUIDs; fields that take an id or a code need not be", (t) => {
  t.is(violation(DeleteProjectRequestSchema, { projectId: "not-a-uuid" })?.path, "project_id");
  t.is(violation(ListMetricsRequestSchema, { jobId: UUID, trustId: "north" }), undefined);
  t.is(violation(CreateUserRequestSchema, { email: "a@b.org", roles: [{ role: Role.TRUST_ADMIN, trustId: "north" }] }), undefined);
});

test("nested messages, repeated fields and map keys and values are walked, and the path says where", (t) => {
  t.is(violation(CreateUserRequestSchema, { email: "a@b.org", roles: [{ role: Role.ADMIN }, { role: Role.TRUST_ADMIN, trustId: "x\0" }] })?.path, "roles[1].trust_id");
  t.is(violation(ReportEventRequestSchema, { details: { ok: "fine", "k\0": "v" } })?.path, "details key");
  t.is(violation(ReportEventRequestSchema, { details: { k: "v\0" } })?.path, 'details["k"]');
});

test("long text fields get room, but not unlimited room", (t) => {
  t.is(violation(SubmitCohortQueryRequestSchema, { projectId: UUID, sql: `select ${"x, ".repeat(3000)}1` }), undefined);
  t.is(violation(SubmitCohortQueryRequestSchema, { projectId: UUID, sql: "x".repeat(100_001) })?.problem, "longer than 100000 characters");
});

test("training log lines keep terminal escapes but not NUL", (t) => {
  t.is(violation(WriteLogRequestSchema, { lines: ["\x1b[32mepoch 1\x1b[0m", "50%\r"] }), undefined);
  t.is(violation(WriteLogRequestSchema, { lines: ["ok", "bad\0"] })?.path, "lines[1]");
});

test("trust-internal services keep their own id formats", (t) => {
  t.is(violation(GetCohortStatisticsRequestSchema, { projectId: "p1", queryId: "q1", sql: "select 1" }), undefined);
  t.is(violation(GetCohortStatisticsRequestSchema, { projectId: "p1\0" })?.path, "project_id");
});

test("a gateway's link messages keep long text and terminal escapes, nested messages from other packages included, but not NUL", (t) => {
  const detail = `\x1b[31mdocker: ${"x".repeat(100_000)}\x1b[0m`;
  const heartbeat = { case: "heartbeat" as const, value: { health: { services: [{ name: "docker", detail }] } } };
  t.is(violation(ConnectRequestSchema, { message: heartbeat }), undefined);
  const progress = { case: "progress" as const, value: { taskId: UUID, message: "half\0way" } };
  t.is(violation(ConnectRequestSchema, { message: progress })?.path, "progress.message");
});

test("a gateway's progress must name its task by UUID, so that its reports are never stored under an empty or malformed id", (t) => {
  const progress = (taskId: string) => ({ message: { case: "progress" as const, value: { taskId, training: {} } } });
  t.deepEqual(violation(ConnectRequestSchema, progress("")), { path: "progress.task_id", problem: "is required" });
  t.is(violation(ConnectRequestSchema, progress("é漢字"))?.path, "progress.task_id");
  t.is(violation(ConnectRequestSchema, progress(UUID)), undefined);
});

test("a Timestamp or Duration that no JSON or SQL time can hold is refused, naming the field", (t) => {
  const heartbeat = (takenAt: { seconds: bigint; nanos: number }) => ({ message: { case: "heartbeat" as const, value: { health: { takenAt } } } });
  t.deepEqual(violation(ConnectRequestSchema, heartbeat({ seconds: 1n, nanos: -1 })), { path: "heartbeat.health.taken_at", problem: "nanos must be 0 to 999999999" });
  t.is(violation(ConnectRequestSchema, heartbeat({ seconds: 9_999_999_999_999n, nanos: 0 }))?.path, "heartbeat.health.taken_at");
  t.is(violation(ConnectRequestSchema, heartbeat({ seconds: 1_764_547_200n, nanos: 5 })), undefined);
  t.is(violation(CreateEchoTaskRequestSchema, { trust: "north", timeout: { seconds: 5n, nanos: -1 } })?.problem, "seconds and nanos must have the same sign");
});
