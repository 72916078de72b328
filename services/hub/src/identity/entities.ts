import { defineEntity, p } from "@mikro-orm/core";

/** Role names as stored in `user_role.role` and carried in a Principal. */
export const ROLE_NAMES = ["admin", "researcher", "viewer", "trust-admin"] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

/**
 * A platform user. `emailKey` is the lower-cased email that uniqueness and sign-in use; `email` keeps the
 * spelling the admin typed. Secrets: `passwordHash` is scrypt; the TOTP secrets are kept as base32 because
 * the hub must compute codes from them (a hash would not do).
 */
export const UserSchema = defineEntity({
  name: "User",
  tableName: "app_user",
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    email: p.string(),
    emailKey: p.string().unique(),
    name: p.string(),
    passwordHash: p.string().nullable(),
    totpSecret: p.string().nullable(),
    totpPendingSecret: p.string().nullable(),
    totpEnrolledAt: p.datetime().nullable(),
    /** The last TOTP time step accepted, so each code works once. */
    totpLastStep: p.bigint("number").nullable(),
    totpRequired: p.boolean(),
    oidcIssuer: p.string().nullable(),
    oidcSubject: p.string().nullable(),
    disabledAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    version: p.integer().version(),
  },
});
export class User extends UserSchema.class {}
UserSchema.setClass(User);

/** One role held by one user; `trustId` is set exactly for trust-admin. */
export const UserRoleSchema = defineEntity({
  name: "UserRole",
  tableName: "user_role",
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    userId: p.uuid(),
    role: p.enum(ROLE_NAMES),
    trustId: p.uuid().nullable(),
    grantedAt: p.datetime().onCreate(() => new Date()),
    grantedBy: p.string(),
  },
});
export class UserRole extends UserRoleSchema.class {}
UserRoleSchema.setClass(UserRole);

/**
 * A sign-in session: the family of refresh tokens that descend from one login. Revoking it ends every
 * access token and refresh token issued for it.
 */
export const UserSessionSchema = defineEntity({
  name: "UserSession",
  tableName: "user_session",
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    userId: p.uuid(),
    createdAt: p.datetime().onCreate(() => new Date()),
    /** Absolute end: refreshing never extends a session past it. */
    expiresAt: p.datetime(),
    revokedAt: p.datetime().nullable(),
    revokedReason: p.string().nullable(),
  },
});
export class UserSession extends UserSessionSchema.class {}
UserSessionSchema.setClass(UserSession);

/** One refresh token (`flip_refresh_<keyId>_<secret>`; only SHA-256 of the secret is stored). */
export const RefreshTokenSchema = defineEntity({
  name: "RefreshToken",
  tableName: "refresh_token",
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    sessionId: p.uuid(),
    keyId: p.string().unique(),
    secretHash: p.string(),
    createdAt: p.datetime().onCreate(() => new Date()),
    expiresAt: p.datetime(),
    /** Set when exchanged for a successor; presenting it again means it leaked. */
    rotatedAt: p.datetime().nullable(),
  },
});
export class RefreshToken extends RefreshTokenSchema.class {}
RefreshTokenSchema.setClass(RefreshToken);

/** A personal API token (`flip_user_<keyId>_<secret>`; only SHA-256 of the secret is stored). */
export const ApiTokenRecordSchema = defineEntity({
  name: "ApiTokenRecord",
  tableName: "api_token",
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    userId: p.uuid(),
    name: p.string(),
    keyId: p.string().unique(),
    secretHash: p.string(),
    createdAt: p.datetime().onCreate(() => new Date()),
    expiresAt: p.datetime(),
    lastUsedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
  },
});
export class ApiTokenRecord extends ApiTokenRecordSchema.class {}
ApiTokenRecordSchema.setClass(ApiTokenRecord);

/** The identity entities, for the hub's entity list. */
export const identityEntities = [UserSchema, UserRoleSchema, UserSessionSchema, RefreshTokenSchema, ApiTokenRecordSchema];
