import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import type { DemoState } from "./demo-state.js";

export interface DemoTrust {
  code: string;
  name: string;
  region: string;
  /** Synthetic population size and case mix of this trust's OMOP data. */
  persons: number;
  profile: string;
  seed: number;
}

export const demoTrusts: DemoTrust[] = [
  { code: "north", name: "North General Hospital", region: "north", persons: 6000, profile: "north", seed: 11 },
  { code: "south", name: "South University Hospital", region: "south", persons: 4000, profile: "south", seed: 22 },
];

/**
 * Registers each demo trust unless it exists, and makes sure the demo holds a working API key for it
 * (keys are shown once: when the stored key is missing, the trust's key is rotated).
 */
export async function ensureDemoTrusts(hubUrl: string, bootstrapToken: string, state: DemoState): Promise<Map<string, string>> {
  const client = createClient(TrustService, createGrpcTransport({ baseUrl: hubUrl }));
  // Before the demo's Admin exists the bootstrap token works; afterwards the demo acts as that Admin.
  const accounts = state.read("accounts.json");
  const adminToken = accounts ? (JSON.parse(accounts) as { admin: { token: string } }).admin.token : bootstrapToken;
  const auth = { headers: { authorization: `Bearer ${adminToken}` } };
  const keys = new Map<string, string>();
  for (const t of demoTrusts) {
    const keyFile = `trusts/${t.code}.key`;
    let key = state.read(keyFile);
    try {
      const res = await client.registerTrust({ name: t.name, code: t.code, region: t.region }, auth);
      key = res.apiKey;
      state.write(keyFile, key);
    } catch (e) {
      if (ConnectError.from(e).code !== Code.AlreadyExists) throw e;
      if (!key) {
        key = (await client.rotateTrustKey({ trust: t.code }, auth)).apiKey;
        state.write(keyFile, key);
      }
      await client.enableTrust({ trust: t.code }, auth);
    }
    keys.set(t.code, key);
  }
  return keys;
}
