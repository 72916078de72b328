import * as os from "node:os";
import * as path from "node:path";
import type { Client } from "@connectrpc/connect";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import type { JobService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { readSingleTensor } from "@flip/trust-gateway/simulation/simulated-training.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import type { GatewayConfig } from "@flip/trust-gateway/config.js";
import { startGateway, type RunningGateway } from "@flip/trust-gateway/gateway.js";
import { staticHealth } from "@flip/trust-gateway/health/health-reporter.js";
import type { TaskHandlers } from "@flip/trust-gateway/tasks/task-handler.js";
import { BOOTSTRAP_TOKEN, type TestHub } from "./test-hub.js";

/**
 * A project that `trustIds` approved and froze a cohort for, as governance leaves it (its own tests
 * cover how): the rows are written directly so training tests start where training does.
 */
export async function approvedProject(t: TestHub, trustIds: string[], name = `study ${Math.random().toString(36).slice(2, 8)}`): Promise<string> {
  const { project } = await t.client(ProjectService, BOOTSTRAP_TOKEN).createProject({ name, description: "training test" });
  const em = t.hub.db.em();
  await em.execute("update project set status = 'approved' where id = ?", [project!.id]);
  for (const trustId of trustIds) {
    await em.execute(
      `insert into project_trust (project_id, trust_id, state, decided_as, decided_by, decided_at, freeze_state, frozen_person_count, staged_at)
       values (?, ?, 'approved', 'trust-admin', 'test', now(), 'frozen', 120, now())`,
      [project!.id, trustId],
    );
  }
  return project!.id;
}

/** A gateway in this process with the given handlers (e.g. a simulated trainer), linked to the hub. */
export async function startHandlerGateway(hubUrl: string, trust: { code: string; apiKey: string }, handlers: TaskHandlers, extra: Partial<GatewayConfig> = {}): Promise<RunningGateway> {
  const config: GatewayConfig = {
    hubUrl,
    trustCode: trust.code,
    trustKey: trust.apiKey,
    capacity: new Map([["training", 4]]),
    gpus: { mode: "none" },
    stateDir: path.join(os.tmpdir(), `flip-train-gw-${trust.code}-${process.pid}`),
    hubCa: undefined,
    pingIntervalMs: 30_000,
    pingTimeoutMs: 10_000,
    reconnectMinMs: 100,
    reconnectMaxMs: 1_000,
    healthIntervalMs: 30_000,
    logLevel: "warn",
    ...extra,
  } as GatewayConfig;
  const log = createLogger({ service: "gateway", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });
  const g = await startGateway(config, log.child({ trust: trust.code }), { handlers, health: staticHealth(), persistent: false });
  await g.linked(30_000);
  return g;
}

/** A job's global weights (the latest, or one round's) as the one F32 tensor the test workloads use; the download must end with a checksum. */
export async function downloadedWeights(jobs: Client<typeof JobService>, jobId: string, round = 0): Promise<Float32Array> {
  const parts: Uint8Array[] = [];
  let sha = "";
  for await (const m of jobs.downloadWeights({ jobId, round })) {
    parts.push(m.data);
    if (m.sha256) sha = m.sha256;
  }
  if (!/^[0-9a-f]{64}$/.test(sha)) throw new Error("the download did not end with a checksum");
  return readSingleTensor(Buffer.concat(parts));
}
