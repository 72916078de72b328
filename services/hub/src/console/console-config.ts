import * as path from "node:path";
import { ConfigError, type SettingsReader } from "@flip/shared/config/settings.js";

export interface ConsoleConfig {
  /** The built console (index.html and assets/); FLIP_CONSOLE_DIR. */
  dir: string;
  /**
   * Other origins whose pages may call the hub (CORS), e.g. a console development server
   * (http://localhost:5173); FLIP_CONSOLE_ORIGINS, comma-separated. The hub's own pages need none.
   */
  allowedOrigins: string[];
}

/** The repository's console/dist, where `npm run build:console` writes. */
export const DEFAULT_CONSOLE_DIR = path.resolve(import.meta.dirname, "../../../../console/dist");

export function readConsoleConfig(s: SettingsReader): ConsoleConfig {
  const raw = s.string("FLIP_CONSOLE_ORIGINS", "");
  const allowedOrigins = raw
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
  for (const o of allowedOrigins) {
    let u: URL;
    try {
      u = new URL(o);
    } catch {
      throw new ConfigError("FLIP_CONSOLE_ORIGINS", "comma-separated origins such as https://console.example.org (scheme, host and port only)", raw);
    }
    if (u.origin !== o || (u.protocol !== "https:" && u.protocol !== "http:")) {
      throw new ConfigError("FLIP_CONSOLE_ORIGINS", "comma-separated origins such as https://console.example.org (scheme, host and port only)", raw);
    }
  }
  return { dir: path.resolve(s.string("FLIP_CONSOLE_DIR", DEFAULT_CONSOLE_DIR)), allowedOrigins };
}
