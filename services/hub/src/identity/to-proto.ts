import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ApiTokenSchema, Role, RoleGrantSchema, UserSchema, type ApiToken, type RoleGrant, type User as UserProto } from "@flip/gen/flip/hub/v1/users_pb.js";
import type { ApiTokenRecord, RoleName, UserRole } from "./entities.js";
import type { RoleRequest } from "./roles.js";
import type { UserWithRoles } from "./user-lookup.js";

const ROLE_TO_PROTO: Record<RoleName, Role> = {
  admin: Role.ADMIN,
  researcher: Role.RESEARCHER,
  viewer: Role.VIEWER,
  "trust-admin": Role.TRUST_ADMIN,
};

const ROLE_FROM_PROTO = new Map<Role, RoleName>(Object.entries(ROLE_TO_PROTO).map(([name, role]) => [role, name as RoleName]));

export function roleToProto(r: UserRole): RoleGrant {
  return create(RoleGrantSchema, { role: ROLE_TO_PROTO[r.role], trustId: r.trustId ?? "" });
}

/** A role grant from a request; an unspecified or unknown role becomes undefined for the validator to name. */
export function roleRequestFromProto(g: RoleGrant | undefined): RoleRequest {
  return { role: g ? ROLE_FROM_PROTO.get(g.role) : undefined, trust: g?.trustId.trim() ?? "" };
}

export function userToProto({ user, roles }: UserWithRoles): UserProto {
  return create(UserSchema, {
    id: user.id,
    email: user.email,
    name: user.name,
    roles: roles.map(roleToProto),
    disabled: Boolean(user.disabledAt),
    totpEnrolled: Boolean(user.totpSecret),
    totpRequired: user.totpRequired,
    createdAt: timestampFromDate(user.createdAt),
    oidcSubject: user.oidcSubject ?? "",
  });
}

export function apiTokenToProto(t: ApiTokenRecord): ApiToken {
  return create(ApiTokenSchema, {
    id: t.id,
    name: t.name,
    createdAt: timestampFromDate(t.createdAt),
    expiresAt: timestampFromDate(t.expiresAt),
    lastUsedAt: t.lastUsedAt ? timestampFromDate(t.lastUsedAt) : undefined,
    revoked: Boolean(t.revokedAt),
  });
}
