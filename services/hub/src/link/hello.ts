import { Code, ConnectError } from "@connectrpc/connect";
import type { HealthSnapshot } from "@flip/gen/flip/common/v1/common_pb.js";
import type { ConnectRequest } from "@flip/gen/flip/link/v1/link_pb.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindName } from "@flip/shared/link/task-kinds.js";
import type { InFlightRef } from "../tasks/claims.js";

/** The largest concurrency a gateway may declare for one kind (a guard against a typo like 10000). */
export const MAX_KIND_CAPACITY = 256;
const MAX_IN_FLIGHT = 10_000;

export interface LinkHello {
  trustCode: string;
  gatewayVersion: string;
  /** Tasks of each kind (short name) the gateway runs at once. */
  capacity: Map<string, number>;
  inFlight: InFlightRef[];
  health: HealthSnapshot | undefined;
  /** The gateway process as it named itself in the request header (see gateway-identity.ts), if it did. */
  gateway?: string;
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/** Validates the first message of a stream: it must be a Hello with a sane capacity declaration. */
export function readHello(first: ConnectRequest | undefined): LinkHello {
  if (!first || first.message.case !== "hello") throw invalid("the first message of a link stream must be hello");
  const h = first.message.value;
  if (h.trustCode === "") throw invalid("hello.trust_code: name the trust this gateway was configured for");
  const capacity = new Map<string, number>();
  h.capacity.forEach((c, i) => {
    if (c.kind === TaskKind.UNSPECIFIED) throw invalid(`hello.capacity[${i}].kind: must not be UNSPECIFIED`);
    if (c.maxConcurrent > MAX_KIND_CAPACITY) throw invalid(`hello.capacity[${i}].max_concurrent: must be at most ${MAX_KIND_CAPACITY}`);
    const name = taskKindName(c.kind);
    if (capacity.has(name)) throw invalid(`hello.capacity[${i}]: kind ${name} is listed twice`);
    // A kind this hub does not know yet (a newer gateway) still gets no tasks: there are none of it.
    capacity.set(name, c.maxConcurrent);
  });
  if (h.inFlight.length > MAX_IN_FLIGHT) throw invalid(`hello.in_flight: at most ${MAX_IN_FLIGHT} tasks`);
  return {
    trustCode: h.trustCode,
    gatewayVersion: h.gatewayVersion.slice(0, 64),
    capacity,
    inFlight: h.inFlight.map((r) => ({ taskId: r.taskId, attempt: r.attempt })),
    health: h.health,
  };
}
