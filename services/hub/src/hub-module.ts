import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import type { DirectRoute } from "@flip/shared/direct/direct-routes.js";

/** One domain of the hub: the services it serves and any background work it runs. */
export interface HubModule {
  services: DescService[];
  routes(router: ConnectRouter): void;
  /**
   * RPCs of `routes` that gRPC binary callers reach straight on their HTTP/2 stream (hot paths). They
   * skip the server's interceptors, so only RPCs whose handler authenticates the caller itself (policy
   * "trust-key") may be direct; the hub refuses to start otherwise.
   */
  direct?(): DirectRoute[];
  /** Starts background work (after the database is ready, before the port opens). */
  start?(): Promise<void>;
  /** Stops background work (after the port closed). */
  stop?(): Promise<void>;
}
