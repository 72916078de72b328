/**
 * How `npm start` stops: every component in order (training workloads, gateways, the trusts' services,
 * the hub, the databases last), one line for each as it stops, on Ctrl-C, SIGTERM or the end of an
 * --exit run. A second Ctrl-C stops at once.
 */

/** The order components stop in; the components of one phase stop together. */
export const STOP_PHASES = ["workloads", "gateways", "services", "hub", "databases"] as const;
export type StopPhase = (typeof STOP_PHASES)[number];

interface Component {
  phase: StopPhase;
  name: string;
  /** Stops it; may return what it did in a few words ("2 containers stopped"). */
  stop: () => Promise<string | void>;
}

export interface StopReport {
  seconds: number;
  /** Components that did not stop cleanly, with why. */
  failed: string[];
}

export class OrderedShutdown {
  private readonly components: Component[] = [];
  #stopped: Promise<StopReport> | undefined;

  constructor(private readonly say: (line: string) => void) {}

  /** Adds a component; components added to the same phase stop together, the phases in STOP_PHASES order. */
  add(phase: StopPhase, name: string, stop: () => Promise<string | void>): void {
    this.components.push({ phase, name, stop });
  }

  /** Whether stopAll has been called. */
  get stopping(): boolean {
    return this.#stopped !== undefined;
  }

  /** Whether nothing has been added (or everything has been stopped). */
  get empty(): boolean {
    return this.components.length === 0;
  }

  /** Stops everything added, once (later calls wait for the first), and says one line per component. */
  stopAll(): Promise<StopReport> {
    return (this.#stopped ??= this.run());
  }

  private async run(): Promise<StopReport> {
    const started = performance.now();
    const failed: string[] = [];
    const components = this.components.splice(0);
    for (const phase of STOP_PHASES) {
      await Promise.all(
        components
          .filter((c) => c.phase === phase)
          .map(async (c) => {
            const t0 = performance.now();
            try {
              const detail = await c.stop();
              this.say(`  stopped ${c.name}${detail ? `: ${detail}` : ""} (${seconds(t0)})`);
            } catch (e) {
              const why = e instanceof Error ? e.message : String(e);
              failed.push(`${c.name}: ${why}`);
              this.say(`  ${c.name} did not stop cleanly: ${why}`);
            }
          }),
      );
    }
    return { seconds: (performance.now() - started) / 1000, failed };
  }
}

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

/**
 * One key press can arrive twice: a terminal signals its whole foreground process group, and npm, also in
 * that group, forwards the signal to its child as well. A signal this soon after the first is the same
 * press; a person pressing again (because the first is taking too long) comes later.
 */
export const SAME_PRESS_MS = 500;

export interface StopSignalHandlers {
  /** The first SIGINT or SIGTERM: stop in order, then exit. */
  stop(signal: NodeJS.Signals): void;
  /** Another, later than SAME_PRESS_MS after the first: stop at once. */
  stopNow(signal: NodeJS.Signals): void;
}

/** Routes SIGINT and SIGTERM to `handlers` (see SAME_PRESS_MS); returns a function that removes the routing. */
export function onStopSignals(handlers: StopSignalHandlers, now: () => number = () => performance.now()): () => void {
  let first: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    const at = now();
    if (first === undefined) {
      first = at;
      handlers.stop(signal);
    } else if (at - first >= SAME_PRESS_MS) {
      handlers.stopNow(signal);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
}
