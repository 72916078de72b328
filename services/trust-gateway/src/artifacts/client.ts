import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ArtifactService } from "@flip/gen/flip/link/v1/link_pb.js";
import { trustKeyInterceptor } from "./interceptor.js";

export type ArtifactClient = Client<typeof ArtifactService>;

export interface ArtifactClientOptions {
  /** The hub's base URL, e.g. https://hub.example.org. */
  baseUrl: string;
  apiKey: string;
  /** TLS and socket options for the HTTP/2 session (e.g. a private CA). */
  nodeOptions?: Parameters<typeof createGrpcTransport>[0]["nodeOptions"];
  /** Further interceptors (e.g. tracing), run after the one that adds the key. */
  interceptors?: Interceptor[];
}

/** A gRPC (HTTP/2) ArtifactService client of its own: large transfers never share the control stream's connection. */
export function createArtifactClient(opts: ArtifactClientOptions): ArtifactClient {
  const transport = createGrpcTransport({
    baseUrl: opts.baseUrl,
    nodeOptions: opts.nodeOptions,
    // Weights are dense floats that gzip barely shrinks, yet gzipping them costs the hub a core per
    // download (and 5x the time here). Artifacts go uncompressed; a writer that wants compression
    // compresses the artifact itself.
    acceptCompression: [],
    interceptors: [trustKeyInterceptor(opts.apiKey), ...(opts.interceptors ?? [])],
  });
  return createClient(ArtifactService, transport);
}
