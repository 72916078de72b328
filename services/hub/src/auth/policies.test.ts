import test from "ava";
import { hubServices, policies } from "./policies.js";

test("every RPC of every hub service has an explicit access policy", (t) => {
  const missing = hubServices.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`)).filter((rpc) => policies[rpc] === undefined);
  t.deepEqual(missing, [], `add a policy for: ${missing.join(", ")}`);
});

test("every policy names an RPC that exists", (t) => {
  const rpcs = new Set(hubServices.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`)));
  const stale = Object.keys(policies).filter((rpc) => !rpcs.has(rpc));
  t.deepEqual(stale, []);
});

test("only sign-in (and how to sign in) and token refresh are open to anonymous callers", (t) => {
  const open = Object.entries(policies).filter(([, p]) => p === "public").map(([rpc]) => rpc).sort();
  t.deepEqual(open, ["flip.hub.v1.AuthService/GetSignInOptions", "flip.hub.v1.AuthService/Login", "flip.hub.v1.AuthService/Logout", "flip.hub.v1.AuthService/Refresh"]);
});
