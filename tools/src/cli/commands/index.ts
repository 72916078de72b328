import type { CliCommand } from "../command.js";
import { hubCommands } from "./hub.js";
import { trustCommands } from "./trust.js";

/** Every `flip` command. Add a command group by adding its module's array here. */
export const allCommands: CliCommand[] = [...hubCommands, ...trustCommands];
