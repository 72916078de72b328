import { writeFileSync } from "node:fs";
import * as path from "node:path";

/**
 * Every connection, over the local socket or loopback TCP, must give the superuser's password
 * (scram-sha-256): another OS user on the machine cannot connect without reading the password file.
 * Written on every start, so data directories made with weaker rules are brought up to these.
 */
const PG_HBA = `# Written by FLIP on every start of the embedded server; edits are overwritten.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  scram-sha-256
host    all          all   127.0.0.1/32   scram-sha-256
host    all          all   ::1/128        scram-sha-256
local   replication  all                  scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
host    replication  all   ::1/128        scram-sha-256
`;

export function writeClientAuthentication(serverDataDir: string): void {
  // The file exists (initdb wrote it), so writing keeps its owner and mode.
  writeFileSync(path.join(serverDataDir, "pg_hba.conf"), PG_HBA);
}
