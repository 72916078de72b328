import type { CliCommand } from "../command.js";
import { trustLogCommands } from "./trust-log.js";
import { trustLedgerCommands } from "./trust-ledger.js";
import { hubCommands } from "./hub.js";
import { trustCommands } from "./trust.js";
import { projectCommands } from "./project.js";
import { cohortCommands } from "./cohort.js";
import { imagingCommands } from "./imaging.js";
import { auditCommands } from "./audit.js";
import { loginCommands } from "./login.js";
import { userCommands } from "./user.js";
import { tokenCommands } from "./token.js";
import { gatewayCommands } from "./gateway.js";
import { taskCommands } from "./task.js";
import { modelCommands } from "./model.js";
import { jobCommands } from "./job.js";

/** Every `flip` command. Add a command group by adding its module's array here. */
export const allCommands: CliCommand[] = [
  ...hubCommands,
  ...loginCommands,
  ...userCommands,
  ...tokenCommands,
  ...trustCommands,
  ...trustLedgerCommands,
  ...gatewayCommands,
  ...trustLogCommands,
  ...taskCommands,
  ...projectCommands,
  ...cohortCommands,
  ...imagingCommands,
  ...modelCommands,
  ...jobCommands,
  ...auditCommands,
];
