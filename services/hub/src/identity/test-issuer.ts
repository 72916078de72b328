import { createHash, createHmac, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { encodeJwt, type JwtClaims, type JwtHeader } from "./jwt.js";

/**
 * A small OpenID Connect provider for tests: a real HTTP server on 127.0.0.1 serving a discovery document
 * and a JWKS with freshly generated RSA and EC keys, and a `sign` that mints tokens the way a provider would.
 * For browsers it has an authorization endpoint that signs in `loginSubject` at once (no login form) and a
 * token endpoint for the authorization code flow with PKCE (S256) and refresh tokens, for `browserClientId`.
 */
export interface TestIssuer {
  issuer: string;
  audience: string;
  /** The public client the authorization endpoint accepts. */
  browserClientId: string;
  /** Who the authorization endpoint signs in; default "subject-1". */
  loginSubject: string;
  /** Codes exchanged at the token endpoint so far. */
  codesExchanged(): number;
  /** How many times the JWKS was fetched. */
  jwksFetches(): number;
  /** A token with sensible defaults (RS256, kid "rsa-1", 5 minutes) overridden by `claims` and `opts`. */
  sign(claims?: JwtClaims, opts?: SignOptions): string;
  /** The RSA public key as PEM (for algorithm-confusion tests). */
  rsaPublicKeyPem(): string;
  /** Publishes another RSA key under `kid`, as a provider does when it rotates (`bits` for too-short keys). */
  addRsaKey(kid: string, bits?: number): void;
  close(): Promise<void>;
}

export interface SignOptions {
  alg?: "RS256" | "ES256" | "HS256" | "none";
  kid?: string;
  /** Sign with a key the provider never published (a forgery). */
  foreignKey?: boolean;
  /** HMAC secret for alg HS256. */
  hmacSecret?: Buffer | string;
}

interface Pair {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: KeyObject;
  publicKey: KeyObject;
}

function rsaPair(kid: string, modulusLength = 2048): Pair {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength });
  return { kid, alg: "RS256", privateKey, publicKey };
}

export async function startTestIssuer(audience = "flip-hub-test"): Promise<TestIssuer> {
  const pairs: Pair[] = [rsaPair("rsa-1")];
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  pairs.push({ kid: "ec-1", alg: "ES256", privateKey: ec.privateKey, publicKey: ec.publicKey });
  const foreign = rsaPair("rsa-1");
  let fetches = 0;
  let exchanged = 0;
  let issuer = "";
  const codes = new Map<string, { challenge: string; redirectUri: string; subject: string }>();
  const refreshTokens = new Map<string, string>();
  const server = http.createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    const url = new URL(req.url ?? "/", issuer || "http://127.0.0.1");
    if (url.pathname === "/authorize") {
      authorize(url, res);
    } else if (url.pathname === "/token") {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => token(req.method ?? "", new URLSearchParams(body), res));
    } else if (req.url === "/.well-known/openid-configuration") {
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks.json`, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token` }));
    } else if (req.url === "/jwks.json") {
      fetches++;
      res.end(JSON.stringify({ keys: pairs.map((p) => ({ ...p.publicKey.export({ format: "jwk" }), kid: p.kid, alg: p.alg, use: "sig" })) }));
    } else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const fail = (res: http.ServerResponse, status: number, error: string, description: string) => {
    res.statusCode = status;
    res.end(JSON.stringify({ error, error_description: description }));
  };
  /** Signs `self.loginSubject` in at once and sends the browser back with a code. */
  function authorize(url: URL, res: http.ServerResponse) {
    const q = url.searchParams;
    if (q.get("response_type") !== "code" || q.get("client_id") !== self.browserClientId || !q.get("redirect_uri")) return fail(res, 400, "invalid_request", "response_type=code, client_id and redirect_uri are required");
    if (q.get("code_challenge_method") !== "S256" || !q.get("code_challenge")) return fail(res, 400, "invalid_request", "PKCE with S256 is required");
    const code = randomBytes(16).toString("base64url");
    codes.set(code, { challenge: q.get("code_challenge")!, redirectUri: q.get("redirect_uri")!, subject: self.loginSubject });
    const back = new URL(q.get("redirect_uri")!);
    back.searchParams.set("code", code);
    if (q.get("state")) back.searchParams.set("state", q.get("state")!);
    res.statusCode = 302;
    res.setHeader("location", back.toString());
    res.end();
  }
  /** The token endpoint: a browser calls it cross-origin, so it answers CORS like real providers. */
  function token(method: string, form: URLSearchParams, res: http.ServerResponse) {
    res.setHeader("access-control-allow-origin", "*");
    if (method === "OPTIONS") {
      res.setHeader("access-control-allow-headers", "content-type");
      res.statusCode = 204;
      return res.end();
    }
    const issue = (subject: string) => {
      const refresh = randomBytes(16).toString("base64url");
      refreshTokens.set(refresh, subject);
      res.end(JSON.stringify({ access_token: self.sign({ sub: subject }), token_type: "Bearer", expires_in: 300, refresh_token: refresh }));
    };
    if (form.get("client_id") !== self.browserClientId) return fail(res, 401, "invalid_client", "unknown client");
    if (form.get("grant_type") === "refresh_token") {
      const subject = refreshTokens.get(form.get("refresh_token") ?? "");
      if (!subject) return fail(res, 400, "invalid_grant", "unknown refresh token");
      refreshTokens.delete(form.get("refresh_token")!);
      return issue(subject);
    }
    const grant = codes.get(form.get("code") ?? "");
    if (form.get("grant_type") !== "authorization_code" || !grant) return fail(res, 400, "invalid_grant", "unknown or used code");
    codes.delete(form.get("code")!);
    if (form.get("redirect_uri") !== grant.redirectUri) return fail(res, 400, "invalid_grant", "redirect_uri differs from the authorization request");
    const verifier = form.get("code_verifier") ?? "";
    if (createHash("sha256").update(verifier).digest("base64url") !== grant.challenge) return fail(res, 400, "invalid_grant", "the code verifier does not match the challenge");
    exchanged++;
    issue(grant.subject);
  }

  const self: TestIssuer = {
    issuer,
    audience,
    browserClientId: "flip-console",
    loginSubject: "subject-1",
    codesExchanged: () => exchanged,
    jwksFetches: () => fetches,
    rsaPublicKeyPem: () => pairs[0]!.publicKey.export({ format: "pem", type: "spki" }).toString(),
    addRsaKey: (kid, bits) => void pairs.push(rsaPair(kid, bits)),
    sign(claims = {}, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const body: JwtClaims = { iss: issuer, aud: audience, sub: "subject-1", iat: now, exp: now + 300, ...claims };
      const alg = opts.alg ?? "RS256";
      const pair = opts.foreignKey ? foreign : (pairs.find((p) => p.kid === opts.kid) ?? pairs.find((p) => p.alg === alg) ?? pairs[0]!);
      const header: JwtHeader = { alg, typ: "at+jwt", kid: opts.kid ?? pair.kid };
      return encodeJwt(header, body, (input) => {
        if (alg === "none") return Buffer.alloc(0);
        if (alg === "HS256") return createHmac("sha256", opts.hmacSecret ?? "").update(input).digest();
        if (alg === "ES256") return sign("sha256", input, { key: pair.privateKey, dsaEncoding: "ieee-p1363" });
        return sign("sha256", input, pair.privateKey);
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return self;
}
