import { Migration } from "@mikro-orm/migrations";

/** Users, roles, sessions, refresh and API tokens, sign-in throttling, and the hub's shared secrets. */
export class M0003Identity extends Migration {
  override name = "m0003-identity";

  override up(): void {
    this.addSql(`
      create table app_user (
        id uuid primary key,
        email text not null,
        email_key text not null unique,
        name text not null,
        password_hash text,
        totp_secret text,
        totp_pending_secret text,
        totp_enrolled_at timestamptz,
        totp_last_step bigint,
        totp_required boolean not null default false,
        oidc_issuer text,
        oidc_subject text,
        disabled_at timestamptz,
        created_at timestamptz not null,
        version integer not null default 1,
        constraint app_user_oidc_pair check ((oidc_issuer is null) = (oidc_subject is null))
      )`);
    this.addSql(`create unique index app_user_oidc_idx on app_user (oidc_issuer, oidc_subject) where oidc_subject is not null`);
    this.addSql(`
      create table user_role (
        id uuid primary key,
        user_id uuid not null references app_user (id) on delete cascade,
        role text not null check (role in ('admin', 'researcher', 'viewer', 'trust-admin')),
        trust_id uuid references trust (id),
        granted_at timestamptz not null,
        granted_by text not null,
        constraint user_role_scope check ((role = 'trust-admin') = (trust_id is not null))
      )`);
    // Two partial indexes rather than NULLS NOT DISTINCT, which needs PostgreSQL 15.
    this.addSql(`create unique index user_role_global_idx on user_role (user_id, role) where trust_id is null`);
    this.addSql(`create unique index user_role_scoped_idx on user_role (user_id, role, trust_id) where trust_id is not null`);
    this.addSql(`create index user_role_trust_idx on user_role (trust_id) where trust_id is not null`);
    this.addSql(`
      create table user_session (
        id uuid primary key,
        user_id uuid not null references app_user (id) on delete cascade,
        created_at timestamptz not null,
        expires_at timestamptz not null,
        revoked_at timestamptz,
        revoked_reason text
      )`);
    this.addSql(`create index user_session_user_idx on user_session (user_id)`);
    this.addSql(`
      create table refresh_token (
        id uuid primary key,
        session_id uuid not null references user_session (id) on delete cascade,
        key_id text not null unique,
        secret_hash text not null,
        created_at timestamptz not null,
        expires_at timestamptz not null,
        rotated_at timestamptz
      )`);
    this.addSql(`create index refresh_token_session_idx on refresh_token (session_id)`);
    this.addSql(`
      create table api_token (
        id uuid primary key,
        user_id uuid not null references app_user (id) on delete cascade,
        name text not null,
        key_id text not null unique,
        secret_hash text not null,
        created_at timestamptz not null,
        expires_at timestamptz not null,
        last_used_at timestamptz,
        revoked_at timestamptz
      )`);
    this.addSql(`create index api_token_user_idx on api_token (user_id)`);
    // Sign-in attempts per lower-cased email, in flight or failed, for throttling shared by all replicas.
    this.addSql(`
      create table login_attempt (
        id bigserial primary key,
        email_key text not null,
        at timestamptz not null default now()
      )`);
    this.addSql(`create index login_attempt_email_idx on login_attempt (email_key, at)`);
    this.addSql(`create index login_attempt_at_idx on login_attempt (at)`);
    // Secrets every replica must share (e.g. the key that signs access tokens); created once, on first start.
    this.addSql(`
      create table hub_secret (
        name text primary key,
        secret bytea not null,
        created_at timestamptz not null default now()
      )`);
  }
}
