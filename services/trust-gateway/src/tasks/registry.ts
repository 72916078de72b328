import { echoHandler } from "./handlers/echo.js";
import type { TaskHandlers } from "./task-handler.js";

/**
 * Every task kind this gateway runs. To add a kind, write its handler in `handlers/<kind>.ts` and add
 * one line here; the link, capacity, retries, cancellation and results need no change.
 */
export const defaultTaskHandlers: TaskHandlers = {
  echo: echoHandler,
};
