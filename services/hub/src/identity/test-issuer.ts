import { createHmac, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { encodeJwt, type JwtClaims, type JwtHeader } from "./jwt.js";

/**
 * A small OpenID Connect provider for tests: a real HTTP server on 127.0.0.1 serving a discovery document
 * and a JWKS with freshly generated RSA and EC keys, and a `sign` that mints tokens the way a provider would.
 */
export interface TestIssuer {
  issuer: string;
  audience: string;
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
  let issuer = "";
  const server = http.createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url === "/.well-known/openid-configuration") {
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks.json` }));
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

  return {
    issuer,
    audience,
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
}
