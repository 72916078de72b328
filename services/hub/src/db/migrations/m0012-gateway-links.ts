import { Migration } from "@mikro-orm/migrations";

/**
 * A trust's link names the gateway process holding it, and counts the other gateway processes of the
 * trust it refused while it was live (two gateways of one trust must not take turns), so `flip trust
 * get` can show an operator the orphan to stop.
 */
export class M0012GatewayLinks extends Migration {
  override name = "m0012-gateway-links";

  override up(): void {
    this.addSql(`alter table trust_link add column gateway text not null default ''`);
    this.addSql(`alter table trust_link add column refused_attempts integer not null default 0`);
    this.addSql(`alter table trust_link add column last_refused_gateway text`);
    this.addSql(`alter table trust_link add column last_refused_at timestamptz`);
  }
}
