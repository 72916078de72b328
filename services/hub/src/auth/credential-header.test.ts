import test from "ava";
import { Code } from "@connectrpc/connect";
import { requireCredentialHeader } from "./authenticate.js";

const none = new Headers();
const bearer = new Headers({ authorization: "Bearer something" });

test("public RPCs, health and reflection need no credential on their headers", (t) => {
  for (const rpc of ["flip.hub.v1.AuthService/Login", "grpc.health.v1.Health/Check", "grpc.reflection.v1.ServerReflection/ServerReflectionInfo"]) {
    t.is(requireCredentialHeader(rpc, none), undefined, rpc);
  }
});

test("every other RPC is refused before its body without a bearer credential, and passed on with one", (t) => {
  const user = requireCredentialHeader("flip.hub.v1.ModelService/CreateModel", none);
  t.is(user?.code, Code.Unauthenticated);
  t.is(user?.rawMessage, "sign in first: send 'Authorization: Bearer <token>'");
  const trust = requireCredentialHeader("flip.link.v1.ArtifactService/Upload", none);
  t.is(trust?.code, Code.Unauthenticated);
  t.regex(trust?.rawMessage ?? "", /trust API key/);
  t.is(requireCredentialHeader("flip.hub.v1.ModelService/CreateModel", bearer), undefined);
  t.is(requireCredentialHeader("flip.link.v1.ArtifactService/Upload", bearer), undefined);
});

test("an RPC without a policy is refused whatever the headers", (t) => {
  t.is(requireCredentialHeader("flip.hub.v1.ModelService/Unknown", bearer)?.code, Code.PermissionDenied);
});
