import { jwtVerify } from "jose";
import { IdentityProviderUnavailableError, JwksCache } from "./jwks.js";
import {
  ASYMMETRIC_ALGORITHMS,
  decodeJwt,
  isAsymmetricAlgorithm,
  MissingClaimError,
  TokenNotYetValidError,
  UnsupportedAlgorithmError,
  WrongIssuerError,
  type JwtClaims,
} from "./jwt.js";
import { rejectionOf } from "./token-rejections.js";

export { IdentityProviderUnavailableError };

export interface OidcSettings {
  issuer: string;
  audience: string;
  jwksUrl: string | undefined;
  clockSkewSeconds: number;
}

export interface VerifiedOidcToken {
  issuer: string;
  subject: string;
  claims: JwtClaims;
}

/**
 * Verifies access tokens of the configured OpenID Connect provider with jose: signature against its JWKS
 * (asymmetric algorithms only), issuer, audience, expiry and not-before. Throws a TokenRejectedError
 * subclass naming the failure, or IdentityProviderUnavailableError when the keys cannot be fetched.
 */
export class OidcVerifier {
  constructor(
    private readonly settings: OidcSettings,
    private readonly jwks: JwksCache = new JwksCache({ issuer: settings.issuer, jwksUrl: settings.jwksUrl }),
    private readonly now: () => Date = () => new Date(),
  ) {}

  get issuer(): string {
    return this.settings.issuer;
  }

  async verify(token: string): Promise<VerifiedOidcToken> {
    const jwt = decodeJwt(token);
    // Checked before any key lookup, so tokens of other issuers never make us call the provider.
    if (jwt.claims.iss !== this.settings.issuer) throw new WrongIssuerError("the token was issued by someone else");
    // "none" and HS* are refused here (and by jose's `algorithms`): an HMAC "signed" with the provider's public key must not pass.
    if (!isAsymmetricAlgorithm(jwt.header.alg)) throw new UnsupportedAlgorithmError(`tokens signed with ${jwt.header.alg} are not accepted`);
    const now = this.now();
    const skew = this.settings.clockSkewSeconds;
    let claims: JwtClaims;
    try {
      ({ payload: claims } = await jwtVerify(token, (header, input) => this.jwks.keyFor(header, input), {
        algorithms: [...ASYMMETRIC_ALGORITHMS],
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        requiredClaims: ["exp", "sub"],
        clockTolerance: skew,
        currentDate: now,
      }));
    } catch (e) {
      throw rejectionOf(e);
    }
    // jose checks iat only against a maximum age; a token from the future is refused as before.
    if (claims.iat !== undefined && claims.iat > now.getTime() / 1000 + skew) throw new TokenNotYetValidError("the token was issued in the future (iat)");
    if (typeof claims.sub !== "string" || claims.sub === "") throw new MissingClaimError("the token has no subject (sub)");
    return { issuer: this.settings.issuer, subject: claims.sub, claims };
  }
}
