/**
 * Typed configuration read once from the environment. A wrong value stops the process with one line
 * that names the setting and what it allows.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly setting: string,
    readonly allowed: string,
    readonly got: string,
  ) {
    super(`${setting}=${JSON.stringify(got)} is not valid: expected ${allowed}`);
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads settings from one environment, remembering which names it looked at. */
export class SettingsReader {
  constructor(private readonly env: Env) {}

  string(name: string, fallback: string): string {
    const v = this.env[name];
    return v === undefined || v === "" ? fallback : v;
  }

  optionalString(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === "" ? undefined : v;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ConfigError(name, `an integer from ${min} to ${max}`, raw);
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.env[name];
    if (raw === undefined || raw === "") return fallback;
    if (["1", "true", "yes", "on"].includes(raw.toLowerCase())) return true;
    if (["0", "false", "no", "off"].includes(raw.toLowerCase())) return false;
    throw new ConfigError(name, "one of true, false, 1, 0, yes, no, on, off", raw);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.env[name];
    if (raw === undefined || raw === "") return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      throw new ConfigError(name, `one of ${allowed.join(", ")}`, raw);
    }
    return raw as T;
  }

  /** A `host:port` listen address. */
  address(name: string, fallback: string): { host: string; port: number } {
    const raw = this.string(name, fallback);
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(raw);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port > 65535) throw new ConfigError(name, "host:port, e.g. 127.0.0.1:7770 (port 0 picks a free one)", raw);
    return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
  }

  url(name: string, fallback: string | undefined, protocols: readonly string[]): string | undefined {
    const raw = this.optionalString(name) ?? fallback;
    if (raw === undefined) return undefined;
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new ConfigError(name, `a URL (${protocols.join(" or ")})`, raw);
    }
    if (!protocols.includes(u.protocol.replace(/:$/, ""))) {
      throw new ConfigError(name, `a URL with scheme ${protocols.join(" or ")}`, raw);
    }
    return raw;
  }
}

/** Runs a config loader and turns a ConfigError into one line on stderr and exit code 2. */
export function loadOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`configuration error: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}
