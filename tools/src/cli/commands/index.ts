import type { CliCommand } from "../command.js";
import { hubCommands } from "./hub.js";
import { trustCommands } from "./trust.js";
import { projectCommands } from "./project.js";
import { cohortCommands } from "./cohort.js";
import { auditCommands } from "./audit.js";
import { loginCommands } from "./login.js";
import { userCommands } from "./user.js";
import { tokenCommands } from "./token.js";
import { gatewayCommands } from "./gateway.js";
import { taskCommands } from "./task.js";

/** Every `flip` command. Add a command group by adding its module's array here. */
export const allCommands: CliCommand[] = [...hubCommands, ...trustCommands, ...projectCommands, ...cohortCommands, ...auditCommands, ...loginCommands, ...userCommands, ...tokenCommands, ...gatewayCommands, ...taskCommands];
