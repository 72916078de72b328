/**
 * The operator's PACS setting: JSON in FLIP_IMAGING_PACS, or in the file FLIP_IMAGING_PACS_FILE names.
 *
 *   {"protocol":"dicomweb","url":"http://pacs:8042/dicom-web","username":"flip","passwordFile":"/run/secrets/pacs"}
 *   {"protocol":"dimse","host":"pacs","port":4242,"calledAet":"PACS","callingAet":"FLIPIMG","retrieve":"move","storePort":11113}
 */
import { readFileSync } from "node:fs";
import { ConfigError } from "@flip/shared/config/settings.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { dicomWebPacs } from "./dicomweb.js";
import { dimsePacs } from "./dimse.js";
import type { PacsClient } from "./pacs.js";

export interface DicomWebPacsConfig {
  protocol: "dicomweb";
  url: string;
  username?: string;
  /** Secret: never logged. */
  password?: string;
  /** Secret: a bearer token instead of username and password. */
  token?: string;
  timeoutMs?: number;
}

export interface DimsePacsConfig {
  protocol: "dimse";
  host: string;
  port: number;
  calledAet: string;
  callingAet: string;
  retrieve: "get" | "move";
  /** C-MOVE: where our store SCP listens; the PACS must know callingAet at this host and port. */
  storePort?: number;
  timeoutMs?: number;
}

export type PacsConfig = DicomWebPacsConfig | DimsePacsConfig;

const DICOMWEB_EXAMPLE = '{"protocol":"dicomweb","url":"http://pacs:8042/dicom-web","username":"flip","passwordFile":"/run/secrets/pacs"}';
const DIMSE_EXAMPLE = '{"protocol":"dimse","host":"pacs","port":4242,"calledAet":"PACS","callingAet":"FLIPIMG","retrieve":"get"}';
const EXPECTED = `the PACS as JSON, e.g. ${DICOMWEB_EXAMPLE} or ${DIMSE_EXAMPLE} (for "retrieve":"move" add "storePort", where the PACS sends the images)`;

const KEYS = {
  dicomweb: ["protocol", "url", "username", "password", "passwordFile", "token", "tokenFile", "timeoutSeconds"],
  dimse: ["protocol", "host", "port", "calledAet", "callingAet", "retrieve", "storePort", "timeoutSeconds"],
} as const;

/** Parses the PACS setting; throws ConfigError naming `settingName`, with an example and no secrets. */
export function parsePacsConfig(raw: string, settingName: string): PacsConfig {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    // The parser's message quotes the input, which may hold a password.
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new ConfigError(settingName, EXPECTED, `<not JSON${at ? `: error at character ${at}` : ""}>`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigError(settingName, EXPECTED, shown(value));
  const o = value as Record<string, unknown>;
  const bad = (what: string) => new ConfigError(settingName, `${what}; ${EXPECTED}`, shown(o));
  if (o.protocol !== "dicomweb" && o.protocol !== "dimse") throw bad('"protocol" "dicomweb" or "dimse"');
  const unknown = Object.keys(o).filter((k) => !(KEYS[o.protocol as "dicomweb" | "dimse"] as readonly string[]).includes(k));
  if (unknown.length) throw bad(`only the keys ${KEYS[o.protocol].join(", ")} (not ${unknown.join(", ")})`);
  const timeoutMs = optionalTimeout(o, bad);

  if (o.protocol === "dicomweb") {
    if (typeof o.url !== "string" || !/^https?:\/\/[^/]/.test(o.url) || !URL.canParse(o.url)) throw bad('"url": the DICOMweb root, http(s)://…');
    if (new URL(o.url).username || new URL(o.url).password) throw bad('"url" without credentials (use "username" and "passwordFile")');
    const password = secret(o, "password", settingName, bad);
    const token = secret(o, "token", settingName, bad);
    if (o.username !== undefined && (typeof o.username !== "string" || o.username === "")) throw bad('"username" a non-empty string');
    if (token !== undefined && (o.username !== undefined || password !== undefined)) throw bad('either "token" or "username" and "password", not both');
    if ((o.username === undefined) !== (password === undefined)) throw bad('"username" and "password" (or "passwordFile") together');
    return { protocol: "dicomweb", url: o.url, username: o.username as string | undefined, password, token, timeoutMs };
  }

  if (typeof o.host !== "string" || o.host === "") throw bad('"host" the PACS host name');
  const port = portOf(o.port, '"port" the PACS DICOM port (1-65535)', bad);
  const calledAet = aetOf(o.calledAet, '"calledAet" the PACS AET', bad);
  const callingAet = aetOf(o.callingAet, '"callingAet" our AET, as the PACS knows it', bad);
  const retrieve = o.retrieve ?? "get";
  if (retrieve !== "get" && retrieve !== "move") throw bad('"retrieve" "get" or "move"');
  let storePort: number | undefined;
  if (retrieve === "move" || o.storePort !== undefined) {
    storePort = portOf(o.storePort, '"storePort" (1-65535) for "retrieve":"move": our port that the PACS sends the images to', bad);
  }
  return { protocol: "dimse", host: o.host, port, calledAet, callingAet, retrieve, storePort, timeoutMs };
}

/** The client for a parsed PACS setting. */
export function createPacsClient(config: PacsConfig, log: Logger): PacsClient {
  if (config.protocol === "dicomweb") {
    const auth = config.token !== undefined ? { token: config.token } : config.username !== undefined ? { username: config.username, password: config.password ?? "" } : undefined;
    return dicomWebPacs({ url: config.url, auth, requestTimeoutMs: config.timeoutMs, idleTimeoutMs: config.timeoutMs });
  }
  return dimsePacs({ ...config, log });
}

/** The setting as shown in an error: secrets hidden. */
function shown(value: unknown): string {
  if (typeof value !== "object" || value === null) return JSON.stringify(value) ?? String(value);
  return JSON.stringify(value, (key, v: unknown) => (key === "password" || key === "token" ? "<hidden>" : v));
}

function secret(o: Record<string, unknown>, key: "password" | "token", settingName: string, bad: (what: string) => ConfigError): string | undefined {
  const direct = o[key];
  const file = o[`${key}File`];
  if (direct !== undefined && file !== undefined) throw bad(`either "${key}" or "${key}File", not both`);
  if (direct !== undefined) {
    if (typeof direct !== "string" || direct === "") throw bad(`"${key}" a non-empty string`);
    return direct;
  }
  if (file === undefined) return undefined;
  if (typeof file !== "string" || file === "") throw bad(`"${key}File" a file path`);
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch {
    throw new ConfigError(settingName, `"${key}File" a readable file holding the PACS ${key}`, file);
  }
  if (text === "") throw new ConfigError(settingName, `"${key}File" a file holding the PACS ${key} (it is empty)`, file);
  return text;
}

function optionalTimeout(o: Record<string, unknown>, bad: (what: string) => ConfigError): number | undefined {
  if (o.timeoutSeconds === undefined) return undefined;
  const s = o.timeoutSeconds;
  if (typeof s !== "number" || !Number.isFinite(s) || s < 1 || s > 3600) throw bad('"timeoutSeconds" a number from 1 to 3600');
  return s * 1000;
}

function portOf(v: unknown, what: string, bad: (what: string) => ConfigError): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) throw bad(what);
  return v;
}

function aetOf(v: unknown, what: string, bad: (what: string) => ConfigError): string {
  // AE: up to 16 printable characters, no backslash; spaces at either end do not count.
  if (typeof v !== "string" || !/^[\x20-\x5b\x5d-\x7e]{1,16}$/.test(v) || v.trim() === "") throw bad(`${what} (1-16 characters, no backslash)`);
  return v.trim();
}
