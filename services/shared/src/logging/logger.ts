import { pino, type Logger } from "pino";

export type { Logger };

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Where JSON lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** A pino JSON logger named after its service. Trace ids are added by the OpenTelemetry pino instrumentation. */
export function createLogger(opts: LoggerOptions): Logger {
  const level = opts.level && LEVELS.includes(opts.level) ? opts.level : "info";
  return pino(
    {
      name: opts.service,
      level,
      base: { service: opts.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ["apiKey", "api_key", "password", "token", "secret", "*.apiKey", "*.password", "*.token"], censor: "[redacted]" },
    },
    opts.destination ?? process.stdout,
  );
}
