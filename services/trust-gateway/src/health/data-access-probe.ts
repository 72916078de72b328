import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { HealthState } from "@flip/gen/flip/common/v1/common_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "@flip/gen/health/v1/health_pb.js";
import type { ServiceProbe } from "./health-reporter.js";

/** Probes a local Connect service through grpc.health.v1 (no credentials needed). */
export function grpcHealthProbe(name: string, baseUrl: string): ServiceProbe {
  const client = createClient(Health, createGrpcTransport({ baseUrl }));
  return {
    name,
    async check(signal) {
      const { status } = await client.check({ service: "" }, { signal, timeoutMs: 5_000 });
      return status === HealthCheckResponse_ServingStatus.SERVING ? { state: HealthState.HEALTHY } : { state: HealthState.DEGRADED, detail: `health status ${HealthCheckResponse_ServingStatus[status]}` };
    },
  };
}
