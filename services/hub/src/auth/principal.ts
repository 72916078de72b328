import { createContextKey } from "@connectrpc/connect";

/** Who is calling a hub RPC, resolved once per call by the authentication interceptor. */
export type Principal =
  | { kind: "anonymous" }
  /** The bootstrap admin token from configuration. */
  | { kind: "bootstrap-admin" }
  | {
      kind: "user";
      userId: string;
      email: string;
      roles: RoleGrantRef[];
      authMethod: "session" | "api-token" | "oidc";
      /** An admin requires TOTP and the user has not enrolled: only enrolment RPCs are allowed (identity/totp-gate.ts). */
      mustEnrollTotp?: boolean;
    };

export interface RoleGrantRef {
  role: "admin" | "researcher" | "viewer" | "trust-admin";
  trustId?: string;
}

export const principalKey = createContextKey<Principal>({ kind: "anonymous" }, { description: "calling principal" });

/** The actor name written to the audit log. */
export function actorOf(p: Principal): string {
  switch (p.kind) {
    case "anonymous":
      return "anonymous";
    case "bootstrap-admin":
      return "bootstrap-admin";
    case "user":
      return `user:${p.userId}`;
  }
}

export function isAdmin(p: Principal): boolean {
  return p.kind === "bootstrap-admin" || (p.kind === "user" && p.roles.some((r) => r.role === "admin"));
}
