import { errors } from "jose";
import { IdentityProviderUnavailableError } from "./jwks.js";
import {
  BadSignatureError,
  MalformedTokenError,
  MissingClaimError,
  TokenExpiredError,
  TokenNotYetValidError,
  TokenRejectedError,
  UnsupportedAlgorithmError,
  WrongAudienceError,
  WrongIssuerError,
} from "./jwt.js";

/** Translates jose's errors into ours, so callers and logs see the same reasons whatever checked the token. */
export function rejectionOf(e: unknown): unknown {
  if (e instanceof TokenRejectedError || e instanceof IdentityProviderUnavailableError) return e;
  if (e instanceof errors.JWTExpired && e.claim === "exp") return new TokenExpiredError("the token has expired", { cause: e });
  if (e instanceof errors.JWTClaimValidationFailed) {
    switch (e.claim) {
      case "iss":
        return new WrongIssuerError("the token was issued by someone else", { cause: e });
      case "aud":
        return new WrongAudienceError("the token was issued for another audience", { cause: e });
      case "exp":
        return new MissingClaimError("the token has no expiry (exp)", { cause: e });
      case "sub":
        return new MissingClaimError("the token has no subject (sub)", { cause: e });
      case "nbf":
      case "iat":
        return new TokenNotYetValidError(`the token is not valid yet (${e.claim})`, { cause: e });
    }
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return new BadSignatureError("the token's signature does not verify", { cause: e });
  if (e instanceof errors.JOSEAlgNotAllowed || e instanceof errors.JOSENotSupported) return new UnsupportedAlgorithmError("the token's algorithm is not accepted", { cause: e });
  // jose refuses keys that do not fit the algorithm (e.g. RSA shorter than 2048 bits) with a TypeError.
  if (e instanceof TypeError) return new UnsupportedAlgorithmError(`the provider's signing key cannot be used: ${e.message}`, { cause: e });
  if (e instanceof errors.JOSEError) return new MalformedTokenError(`the token is malformed (${e.code})`, { cause: e });
  return e;
}
