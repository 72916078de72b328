import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ImagingService } from "@flip/gen/flip/imaging/v1/imaging_pb.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import { clientTracing } from "@flip/shared/telemetry/trace-context.js";

export type ImagingClient = Client<typeof ImagingService>;

/** A gRPC (HTTP/2) client for the trust's imaging service that presents the internal key and the caller's trace context on every call. */
export function createImagingClient(opts: { baseUrl: string; internalKey: string; interceptors?: Interceptor[] }): ImagingClient {
  return createClient(ImagingService, createGrpcTransport({ baseUrl: opts.baseUrl, interceptors: [clientTracing, bearerAuth(opts.internalKey), ...(opts.interceptors ?? [])] }));
}
