import test from "ava";
import type { Principal } from "../auth/principal.js";
import { hasAnyRole, hasRole, trustAdminTrustIds } from "./role-checks.js";

const user = (roles: { role: "admin" | "researcher" | "viewer" | "trust-admin"; trustId?: string }[]): Principal => ({
  kind: "user",
  userId: "u1",
  email: "u1@example.org",
  roles,
  authMethod: "session",
});

test("a global role is held regardless of the trust asked about", (t) => {
  const p = user([{ role: "researcher" }]);
  t.true(hasRole(p, "researcher"));
  t.true(hasRole(p, "researcher", "trust-a"));
  t.false(hasRole(p, "admin"));
  t.true(hasAnyRole(p, ["admin", "researcher"]));
});

test("trust admin counts only for the trust it was granted on", (t) => {
  const p = user([{ role: "trust-admin", trustId: "trust-a" }]);
  t.true(hasRole(p, "trust-admin", "trust-a"));
  t.false(hasRole(p, "trust-admin", "trust-b"));
  t.false(hasRole(p, "trust-admin"));
  t.deepEqual(trustAdminTrustIds(p), ["trust-a"]);
});

test("admin does not imply trust admin", (t) => {
  t.false(hasRole(user([{ role: "admin" }]), "trust-admin", "trust-a"));
});

test("the bootstrap token is admin and nothing else; anonymous holds no role", (t) => {
  t.true(hasRole({ kind: "bootstrap-admin" }, "admin"));
  t.false(hasRole({ kind: "bootstrap-admin" }, "researcher"));
  t.false(hasRole({ kind: "anonymous" }, "viewer"));
});
