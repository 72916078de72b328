import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";

/** One domain of the hub: the services it serves and any background work it runs. */
export interface HubModule {
  services: DescService[];
  routes(router: ConnectRouter): void;
  /** Starts background work (after the database is ready, before the port opens). */
  start?(): Promise<void>;
  /** Stops background work (after the port closed). */
  stop?(): Promise<void>;
}
