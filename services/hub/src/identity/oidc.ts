import { IdentityProviderUnavailableError, JwksCache } from "./jwks.js";
import { checkRegisteredClaims, decodeJwt, isAsymmetricAlgorithm, UnsupportedAlgorithmError, verifyAsymmetricSignature, WrongIssuerError, type JwtClaims } from "./jwt.js";

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
 * Verifies access tokens of the configured OpenID Connect provider: signature against its JWKS
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
    // "none" and HS* are refused here: an HMAC "signed" with the provider's public key must not pass.
    if (!isAsymmetricAlgorithm(jwt.header.alg)) throw new UnsupportedAlgorithmError(`tokens signed with ${jwt.header.alg} are not accepted`);
    const key = await this.jwks.keyFor(jwt.header.kid, jwt.header.alg);
    verifyAsymmetricSignature(jwt, key);
    checkRegisteredClaims(jwt.claims, {
      issuer: this.settings.issuer,
      audience: this.settings.audience,
      now: this.now(),
      clockSkewSeconds: this.settings.clockSkewSeconds,
    });
    return { issuer: this.settings.issuer, subject: jwt.claims.sub!, claims: jwt.claims };
  }
}
