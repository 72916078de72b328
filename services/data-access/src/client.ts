import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { DataAccessService } from "@flip/gen/flip/dataaccess/v1/data_access_pb.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import { clientTracing } from "@flip/shared/telemetry/trace-context.js";

export type DataAccessClient = Client<typeof DataAccessService>;

export interface DataAccessClientOptions {
  /** e.g. http://127.0.0.1:7781 */
  baseUrl: string;
  /** The trust-internal service key. */
  internalKey: string;
  interceptors?: Interceptor[];
}

/** A gRPC (HTTP/2) client for the trust's data-access service that presents the internal key and the caller's trace context on every call. */
export function createDataAccessClient(opts: DataAccessClientOptions): DataAccessClient {
  return createClient(DataAccessService, createGrpcTransport({ baseUrl: opts.baseUrl, interceptors: [clientTracing, bearerAuth(opts.internalKey), ...(opts.interceptors ?? [])] }));
}
