import { EventEmitter, on } from "node:events";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@flip/gen/health/v1/health_pb.js";

export { Status as ServingStatus };

/**
 * Serving status per service name ("" is the whole server), observable for Health.Watch. While a
 * dependency the services need (the database) is down, every service reports NOT_SERVING, so a load
 * balancer drains the replica; each service's own status returns once the dependency answers again.
 */
export class HealthRegistry {
  private readonly statuses = new Map<string, Status>();
  private readonly dependenciesDown = new Set<string>();
  private readonly changes = new EventEmitter({ captureRejections: false });

  constructor(serviceNames: string[]) {
    this.changes.setMaxListeners(0);
    this.set("", Status.SERVING);
    for (const name of serviceNames) this.set(name, Status.SERVING);
  }

  set(service: string, status: Status): void {
    const before = this.get(service);
    this.statuses.set(service, status);
    if (this.get(service) !== before) this.changes.emit("change", service);
  }

  /** Marks every service NOT_SERVING, e.g. while shutting down. */
  setAll(status: Status): void {
    for (const name of [...this.statuses.keys()]) this.set(name, status);
  }

  /** Records whether a dependency (by name, e.g. "postgres") answers. */
  setDependency(name: string, up: boolean): void {
    const before = this.entries();
    if (up) this.dependenciesDown.delete(name);
    else this.dependenciesDown.add(name);
    for (const [service, status] of before) if (this.get(service) !== status) this.changes.emit("change", service);
  }

  get(service: string): Status | undefined {
    const status = this.statuses.get(service);
    return status === Status.SERVING && this.dependenciesDown.size > 0 ? Status.NOT_SERVING : status;
  }

  entries(): [string, Status][] {
    return [...this.statuses.keys()].map((name) => [name, this.get(name)!]);
  }

  async *watch(service: string, signal: AbortSignal): AsyncGenerator<Status> {
    let last = this.get(service) ?? Status.SERVICE_UNKNOWN;
    yield last;
    try {
      for await (const [changed] of on(this.changes, "change", { signal })) {
        if (changed !== service) continue;
        const now = this.get(service) ?? Status.SERVICE_UNKNOWN;
        if (now !== last) {
          last = now;
          yield now;
        }
      }
    } catch (e) {
      if (!signal.aborted) throw e;
    }
  }
}

/** grpc.health.v1.Health over Connect: Check, Watch and List. */
export function registerHealth(router: ConnectRouter, registry: HealthRegistry): void {
  router.service(Health, {
    check(req) {
      const status = registry.get(req.service);
      if (status === undefined) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      return { status };
    },
    async *watch(req, ctx) {
      for await (const status of registry.watch(req.service, ctx.signal)) yield { status };
    },
    list() {
      return { statuses: Object.fromEntries(registry.entries().map(([name, status]) => [name, { status }])) };
    },
  });
}
