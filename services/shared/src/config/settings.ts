import { readFileSync } from "node:fs";

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

/** `host:port` (an IPv6 host in brackets, which are dropped) as its parts; undefined when it is not one. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

/** A setting's value and where it came from, for error messages that never echo a file's contents. */
interface RawSetting {
  text: string;
  /** The variable that gave it: NAME, or NAME_FILE. */
  setting: string;
  /** What an error shows: the value from the environment, or which file it was read from. */
  shown: string;
}

/**
 * Reads settings from one environment. Any setting NAME may instead be given as NAME_FILE, the path of a
 * file holding the value (one trailing newline is dropped), so secrets (database URLs, keys, tokens) can
 * come from mounted files such as compose secrets rather than the environment. Setting both is an error.
 */
export class SettingsReader {
  constructor(private readonly env: Env) {}

  string(name: string, fallback: string): string {
    return this.raw(name)?.text ?? fallback;
  }

  optionalString(name: string): string | undefined {
    return this.raw(name)?.text;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.raw(name);
    if (raw === undefined) return fallback;
    const n = Number(raw.text);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ConfigError(raw.setting, `an integer from ${min} to ${max}`, raw.shown);
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.raw(name);
    if (raw === undefined) return fallback;
    if (["1", "true", "yes", "on"].includes(raw.text.toLowerCase())) return true;
    if (["0", "false", "no", "off"].includes(raw.text.toLowerCase())) return false;
    throw new ConfigError(raw.setting, "one of true, false, 1, 0, yes, no, on, off", raw.shown);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.raw(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw.text)) {
      throw new ConfigError(raw.setting, `one of ${allowed.join(", ")}`, raw.shown);
    }
    return raw.text as T;
  }

  /** A `host:port` listen address. */
  address(name: string, fallback: string): { host: string; port: number } {
    const raw = this.raw(name) ?? { text: fallback, setting: name, shown: fallback };
    const address = parseHostPort(raw.text);
    if (!address) throw new ConfigError(raw.setting, "host:port, e.g. 127.0.0.1:7770 (port 0 picks a free one)", raw.shown);
    return address;
  }

  url(name: string, fallback: string | undefined, protocols: readonly string[]): string | undefined {
    const raw = this.raw(name) ?? (fallback === undefined ? undefined : { text: fallback, setting: name, shown: fallback });
    if (raw === undefined) return undefined;
    let u: URL;
    try {
      u = new URL(raw.text);
    } catch {
      throw new ConfigError(raw.setting, `a URL (${protocols.join(" or ")})`, raw.shown);
    }
    if (!protocols.includes(u.protocol.replace(/:$/, ""))) {
      throw new ConfigError(raw.setting, `a URL with scheme ${protocols.join(" or ")}`, raw.shown);
    }
    return raw.text;
  }

  /** NAME from the environment, or the contents of the file NAME_FILE names; unset and empty are the same. */
  private raw(name: string): RawSetting | undefined {
    const direct = this.env[name] || undefined;
    // A setting that already names a file (FLIP_SECRETS_KEY_FILE) has no second level.
    const fileSetting = name.endsWith("_FILE") ? undefined : `${name}_FILE`;
    const file = fileSetting === undefined ? undefined : this.env[fileSetting] || undefined;
    if (file === undefined || fileSetting === undefined) return direct === undefined ? undefined : { text: direct, setting: name, shown: direct };
    if (direct !== undefined) throw new ConfigError(fileSetting, `either ${name} or ${fileSetting}, not both`, file);
    let text: string;
    try {
      text = readFileSync(file, "utf8").replace(/\r?\n$/, "");
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? String(e);
      throw new ConfigError(fileSetting, `a file holding ${name} that this process (uid ${process.getuid?.() ?? "?"}) can read (${why})`, file);
    }
    if (text === "") throw new ConfigError(fileSetting, `a file holding ${name} (it is empty)`, file);
    return { text, setting: fileSetting, shown: `<the contents of ${file}>` };
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
