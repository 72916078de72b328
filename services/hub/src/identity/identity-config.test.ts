import test from "ava";
import { ConfigError, SettingsReader } from "@flip/shared/config/settings.js";
import { readIdentityConfig } from "./identity-config.js";

const read = (env: Record<string, string>) => readIdentityConfig(new SettingsReader(env));

test("defaults: 15-minute access tokens, 12-hour refresh tokens, 7-day sessions, no single sign-on", (t) => {
  const c = read({});
  t.is(c.accessTokenTtlSeconds, 900);
  t.is(c.refreshTokenTtlSeconds, 43_200);
  t.is(c.sessionMaxSeconds, 7 * 86_400);
  t.is(c.loginMaxFailures, 5);
  t.is(c.oidc, undefined);
});

test("single sign-on needs an HTTPS issuer (plain HTTP only on localhost) and an audience", (t) => {
  t.deepEqual(read({ FLIP_OIDC_ISSUER: "https://login.example.org/realms/flip", FLIP_OIDC_AUDIENCE: "flip-api" }).oidc, {
    issuer: "https://login.example.org/realms/flip",
    audience: "flip-api",
    jwksUrl: undefined,
    clockSkewSeconds: 60,
  });
  t.truthy(read({ FLIP_OIDC_ISSUER: "http://127.0.0.1:8080", FLIP_OIDC_AUDIENCE: "flip-api" }).oidc);
  t.throws(() => read({ FLIP_OIDC_ISSUER: "http://login.example.org", FLIP_OIDC_AUDIENCE: "flip-api" }), { instanceOf: ConfigError, message: /FLIP_OIDC_ISSUER/ });
  t.throws(() => read({ FLIP_OIDC_ISSUER: "https://login.example.org" }), { instanceOf: ConfigError, message: /FLIP_OIDC_AUDIENCE/ });
});

test("a session may not be shorter than one refresh token's life", (t) => {
  t.throws(() => read({ FLIP_REFRESH_TOKEN_TTL_S: "86400", FLIP_SESSION_MAX_S: "3600" }), { instanceOf: ConfigError, message: /FLIP_SESSION_MAX_S/ });
});
