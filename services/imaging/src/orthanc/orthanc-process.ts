/**
 * Runs a real Orthanc process on free loopback ports, for tests, the demo and the benchmark: the PACS
 * of a hospital and FLIP's research store are both Orthanc. Never the Debian system service.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants as fsConstants, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { createInterface } from "node:readline";
import type { Logger } from "@flip/shared/logging/logger.js";
import { ownedServer } from "@flip/shared/process/own-process-group.js";

export interface OrthancOptions {
  /** Storage, index, config and password live here (kept across restarts). */
  dir: string;
  /** Orthanc "Name" and, upper-cased (cut to 16 characters A-Z, 0-9, _, -), the default AET. */
  name: string;
  aet?: string;
  /** Load the DICOMweb plugin (default true). */
  dicomweb?: boolean;
  /** Open a DICOM port (default false); a free one is chosen. */
  dimse?: boolean;
  /** C-MOVE destinations, by a name of our choosing. */
  modalities?: Record<string, { aet: string; host: string; port: number }>;
  /** 0 or undefined: a free port. */
  httpPort?: number;
  /** Orthanc's own log lines go here at debug. */
  log?: Logger;
  /**
   * Speed settings for a store whose files also exist elsewhere (a research store filled from the
   * PACS): no fsync per file, no compression, no jobs saved in the index. A crash of the machine (not
   * of Orthanc) may lose the last files written; their source still has them. Measured on two cores,
   * 128×128 CT slices: 656 instead of 494 instances/s stored one at a time, 1023 instead of 873 with
   * four at once.
   */
  fastStorage?: boolean;
}

export interface RunningOrthanc {
  /** REST root, http://127.0.0.1:PORT. */
  url: string;
  /** url + "/dicom-web". */
  dicomWebUrl: string;
  /** HTTP basic auth; the password is random per dir, kept 0600 in dir and reused on restart. */
  username: string;
  password: string;
  aet: string;
  dicomPort: number | undefined;
  dicomHost: "127.0.0.1";
  /** "Basic ..." */
  authHeader: string;
  /** SIGTERM, then wait for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** SIGKILL at once: tests use it for a PACS that goes away. */
  kill(): Promise<void>;
  /** Stops this process and starts a new one on the same dir and ports. */
  restart(): Promise<RunningOrthanc>;
}

/** No Orthanc binary (or no DICOMweb plugin when one is asked for) on this machine. */
export class OrthancNotInstalledError extends Error {
  override readonly name = "OrthancNotInstalledError";
  constructor(missing: string) {
    super(`Orthanc is not installed: apt-get install orthanc orthanc-dicomweb (${missing} not found)`);
  }
}

/** Orthanc exited or did not answer while starting. */
export class OrthancStartError extends Error {
  override readonly name = "OrthancStartError";
}

const USERNAME = "flip";
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const STDERR_TAIL_LINES = 30;
const DICOMWEB_PLUGINS = ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/lib/orthanc/plugins/libOrthancDicomWeb.so"];

function executable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOrthanc(): string {
  const candidates = ["/usr/sbin/Orthanc", ...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean).map((d) => path.join(d, "Orthanc"))];
  const found = candidates.find(executable);
  if (!found) throw new OrthancNotInstalledError("Orthanc binary");
  return found;
}

function findDicomWebPlugin(): string {
  const found = DICOMWEB_PLUGINS.find((p) => {
    try {
      accessSync(p, fsConstants.R_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found) throw new OrthancNotInstalledError("DICOMweb plugin");
  return found;
}

/**
 * A TCP port free on every interface (Orthanc, and a C-MOVE store SCP, bind them all). Another process
 * may take it before it is used: callers retry or accept the small race.
 */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function passwordFor(dir: string): string {
  const file = path.join(dir, "orthanc-password");
  try {
    const existing = readFileSync(file, "utf8").trim();
    if (existing) return existing;
  } catch {
    // first start in this dir
  }
  const password = randomBytes(18).toString("base64url");
  writeFileSync(file, password + "\n", { mode: 0o600 });
  return password;
}

/** opts.aet as given (checked), or the name upper-cased and cut to what an AET allows. */
function aetFor(opts: OrthancOptions): string {
  if (opts.aet === undefined) return opts.name.toUpperCase().replace(/[^A-Z0-9_-]/g, "_").slice(0, 16) || "ORTHANC";
  if (!/^[A-Z0-9_-]{1,16}$/.test(opts.aet)) {
    throw new Error(`AET ${JSON.stringify(opts.aet)} is not valid: use up to 16 characters A-Z, 0-9, _ or -`);
  }
  return opts.aet;
}

interface Ports {
  http: number;
  dicom: number | undefined;
}

function orthancConfig(opts: OrthancOptions, dir: string, aet: string, password: string, ports: Ports): Record<string, unknown> {
  const db = path.join(dir, "db");
  const dimse = opts.dimse ?? false;
  const config: Record<string, unknown> = {
    Name: opts.name,
    StorageDirectory: db,
    IndexDirectory: db,
    HttpPort: ports.http,
    // Orthanc 1.10 has no option to bind one interface: it listens on all of them. With
    // RemoteAccessAllowed false it refuses every client that is not on this machine.
    RemoteAccessAllowed: false,
    AuthenticationEnabled: true,
    RegisteredUsers: { [USERNAME]: password },
    // Loopback only: compressing DICOM costs both ends CPU and saves nothing.
    HttpCompressionEnabled: false,
    KeepAlive: true,
    TcpNoDelay: true,
    DicomServerEnabled: dimse,
    DicomAet: aet,
    DicomCheckCalledAet: false,
    Plugins: (opts.dicomweb ?? true) ? [findDicomWebPlugin()] : [],
    DicomWeb: { Enable: true, Root: "/dicom-web/", EnableWado: false },
  };
  if (dimse) {
    Object.assign(config, {
      DicomPort: ports.dicom,
      DicomAlwaysAllowEcho: true,
      DicomAlwaysAllowFind: true,
      DicomAlwaysAllowGet: true,
      DicomAlwaysAllowMove: true,
      DicomAlwaysAllowStore: true,
    });
  }
  if (opts.modalities) {
    config.DicomModalities = Object.fromEntries(
      Object.entries(opts.modalities).map(([name, m]) => [name, { AET: m.aet, Host: m.host, Port: m.port }]),
    );
  }
  if (opts.fastStorage) {
    Object.assign(config, {
      SyncStorageArea: false,
      StorageCompression: false,
      SaveJobs: false,
      // Same file again (same UIDs, so same Orthanc id): keep the stored one, answer AlreadyStored.
      OverwriteInstances: false,
      LogExportedResources: false,
    });
  }
  return config;
}

// Orthanc children of this process, killed when it exits so that none outlives a test run.
const live = new Set<ChildProcess>();
let cleanupRegistered = false;

/**
 * Kills every Orthanc child when this process exits. No signal handlers: a process's own shutdown
 * (npm start's Ctrl-C, a service's SIGTERM) owns its signals and stops its Orthancs in order; a handler
 * here that re-raised the signal would cut that shutdown short (a `process.once` handler is already
 * removed while it runs, so "is anyone else listening?" cannot be asked reliably).
 */
function registerCleanup(): void {
  if (cleanupRegistered) return;
  cleanupRegistered = true;
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

interface Launched {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderrTail: () => string;
}

function launch(bin: string, configFile: string, name: string, log: Logger | undefined): Launched {
  registerCleanup();
  // Killed outright when FLIP's process dies without stopping it (its storage is written transactionally).
  const server = ownedServer(bin, [configFile], "KILL");
  const child = spawn(server.command, server.args, {
    env: { ...process.env, TCP_NODELAY: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: server.detached,
  });
  live.add(child);
  const tail: string[] = [];
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > STDERR_TAIL_LINES) tail.shift();
    log?.debug({ orthanc: name, line }, "orthanc");
  };
  createInterface({ input: child.stdout! }).on("line", onLine);
  createInterface({ input: child.stderr! }).on("line", onLine);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      live.delete(child);
      resolve(code);
    });
    child.once("error", (err) => {
      live.delete(child);
      tail.push(String(err));
      resolve(null);
    });
  });
  return { child, exited, stderrTail: () => tail.join("\n") };
}

async function waitUntilAnswering(url: string, authHeader: string, launched: Launched): Promise<void> {
  let exitCode: number | null | undefined;
  void launched.exited.then((code) => (exitCode = code ?? -1));
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exitCode !== undefined) {
      throw new OrthancStartError(`Orthanc exited while starting (code ${exitCode}):\n${launched.stderrTail()}`);
    }
    try {
      const res = await fetch(`${url}/system`, { headers: { authorization: authHeader }, signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      launched.child.kill("SIGKILL");
      await launched.exited;
      throw new OrthancStartError(`Orthanc did not answer GET /system within ${START_TIMEOUT_MS / 1000} s:\n${launched.stderrTail()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function signalAndWait(launched: Launched, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (launched.child.exitCode !== null || launched.child.signalCode !== null) return;
  launched.child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = await Promise.race([
    launched.exited.then(() => false),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
  ]);
  clearTimeout(timer);
  if (gaveUp) {
    launched.child.kill("SIGKILL");
    await launched.exited;
  }
}

/**
 * SIGTERM, then a connection to Orthanc's web server every 100 ms until it exits. Its accept loop notices
 * the stop only when its poll wakes: a connection wakes it at once, otherwise its next timeout does, up
 * to 2 s later (measured here: a whole stop took 0.54 s instead of 2.5 s). Orthanc sees the signal within
 * about 100 ms, hence the repeat. A refused connection means the web server has already gone.
 */
async function stopAndKnock(launched: Launched, httpPort: number): Promise<void> {
  const stopped = signalAndWait(launched, "SIGTERM", STOP_GRACE_MS);
  let done = false;
  void stopped.finally(() => (done = true));
  while (!done) {
    const socket = net.connect({ host: "127.0.0.1", port: httpPort });
    socket.once("connect", () => socket.destroy());
    socket.once("error", () => socket.destroy());
    await Promise.race([stopped, new Promise((r) => setTimeout(r, 100))]);
  }
  await stopped;
}

async function startWithPorts(opts: OrthancOptions, bin: string, dir: string, aet: string, password: string, ports: Ports): Promise<RunningOrthanc> {
  const configFile = path.join(dir, "orthanc.json");
  writeFileSync(configFile, JSON.stringify(orthancConfig(opts, dir, aet, password, ports), null, 2), { mode: 0o600 });
  const url = `http://127.0.0.1:${ports.http}`;
  const authHeader = "Basic " + Buffer.from(`${USERNAME}:${password}`).toString("base64");
  const launched = launch(bin, configFile, opts.name, opts.log);
  await waitUntilAnswering(url, authHeader, launched);
  opts.log?.debug({ orthanc: opts.name, url, dicomPort: ports.dicom, pid: launched.child.pid }, "orthanc started");
  const running: RunningOrthanc = {
    url,
    dicomWebUrl: `${url}/dicom-web`,
    username: USERNAME,
    password,
    aet,
    dicomPort: ports.dicom,
    dicomHost: "127.0.0.1",
    authHeader,
    stop: () => stopAndKnock(launched, ports.http),
    kill: () => signalAndWait(launched, "SIGKILL", STOP_GRACE_MS),
    restart: async () => {
      await running.stop();
      return await startWithPorts(opts, bin, dir, aet, password, ports);
    },
  };
  return running;
}

/**
 * Starts `Orthanc <dir>/orthanc.json` with TCP_NODELAY=1 (without it DCMTK's Nagle delays cost about
 * 96 ms per image) and waits until GET /system answers. Ports left to us are picked free; when one
 * is taken between picking and binding, the start is tried once more on new ports.
 */
export async function startOrthanc(opts: OrthancOptions): Promise<RunningOrthanc> {
  const bin = findOrthanc();
  if (opts.dicomweb ?? true) findDicomWebPlugin();
  const dir = path.resolve(opts.dir);
  mkdirSync(path.join(dir, "db"), { recursive: true });
  const aet = aetFor(opts);
  const password = passwordFor(dir);
  const pickPorts = async (): Promise<Ports> => ({
    http: opts.httpPort || (await freePort()),
    dicom: opts.dimse ? await freePort() : undefined,
  });
  try {
    return await startWithPorts(opts, bin, dir, aet, password, await pickPorts());
  } catch (e) {
    const pickedByUs = !opts.httpPort || opts.dimse;
    if (!(pickedByUs && e instanceof OrthancStartError && /already in use/.test(e.message))) throw e;
    opts.log?.debug({ orthanc: opts.name }, "orthanc port taken while starting: trying new ports");
    return await startWithPorts(opts, bin, dir, aet, password, await pickPorts());
  }
}
