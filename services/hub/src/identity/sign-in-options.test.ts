import test from "ava";
import { SignInOptions, SignInOptionsUnavailableError } from "./sign-in-options.js";
import { startTestIssuer } from "./test-issuer.js";

const browser = { clientId: "flip-console", scope: "openid email", displayName: "Sign in with NHS login" };

test("with a provider and a browser client id, the sign-in options name the provider's endpoints from its discovery document", async (t) => {
  const issuer = await startTestIssuer();
  t.teardown(() => issuer.close());
  const options = new SignInOptions({ issuer: issuer.issuer, audience: issuer.audience, jwksUrl: undefined, clockSkewSeconds: 60 }, browser);
  t.deepEqual(options.connectOrigins(), [issuer.issuer], "before discovery, the issuer's origin");
  const { sso } = await options.get();
  t.like(sso, { issuer: issuer.issuer, clientId: "flip-console", scope: "openid email", displayName: "Sign in with NHS login", authorizationEndpoint: `${issuer.issuer}/authorize`, tokenEndpoint: `${issuer.issuer}/token` });
  t.deepEqual(options.connectOrigins(), [issuer.issuer]);
});

test("without a browser client id (or a provider) no single sign-on is offered", async (t) => {
  t.deepEqual(await new SignInOptions(undefined, browser).get(), {});
  t.deepEqual(await new SignInOptions({ issuer: "https://idp.example", audience: "flip", jwksUrl: undefined, clockSkewSeconds: 60 }, undefined).get(), {});
  t.deepEqual(new SignInOptions(undefined, undefined).connectOrigins(), []);
});

test("a provider that cannot be reached is UNAVAILABLE with a sentence saying to use the password; a known copy is kept", async (t) => {
  const issuer = await startTestIssuer();
  const options = new SignInOptions({ issuer: issuer.issuer, audience: issuer.audience, jwksUrl: undefined, clockSkewSeconds: 60 }, browser, 1_000);
  await issuer.close();
  const e = await t.throwsAsync(options.get(), { instanceOf: SignInOptionsUnavailableError });
  t.regex(e.wireMessage(), /sign in with your password/);

  const live = await startTestIssuer();
  t.teardown(() => live.close());
  const kept = new SignInOptions({ issuer: live.issuer, audience: live.audience, jwksUrl: undefined, clockSkewSeconds: 60 }, browser, 1_000);
  t.truthy((await kept.get()).sso);
  await live.close();
  t.truthy((await kept.get()).sso, "within the hour the endpoints read before are used without asking again");
});
