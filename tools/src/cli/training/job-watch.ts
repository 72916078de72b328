/**
 * `flip job watch`: follows a job's WatchJob stream to its end, reconnecting when the hub goes away
 * mid-watch (a restart) without showing anything twice, and writes it one of three ways: JSON lines,
 * plain appended lines (logs, CI), or a block redrawn in place on a terminal.
 */
import { setTimeout as delay } from "node:timers/promises";
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { JobService, JobState, WatchJobResponseSchema, type Job, type WatchJobResponse } from "@flip/gen/flip/hub/v1/training_pb.js";
import { isEnded } from "./describe.js";
import { JobView } from "./job-view.js";

/** Where a watch writes. */
export interface WatchOutput {
  item(item: WatchJobResponse): void;
  /** Something about the watch itself (a reconnect), not the job. */
  notice(line: string): void;
  /** The watch stopped: write what is still pending and, when the job ended, how it ended. */
  end(jobEnded: boolean): void;
}

/** Exit codes of a watch, by how the job ended. */
export const WATCH_EXIT = { completed: 0, failed: 3, aborted: 4 } as const;

export function exitCodeFor(job: Job | undefined): number {
  switch (job?.state) {
    case JobState.COMPLETED:
      return WATCH_EXIT.completed;
    case JobState.ABORTED:
      return WATCH_EXIT.aborted;
    default:
      return WATCH_EXIT.failed;
  }
}

/** How long a watch that was working keeps reconnecting to a hub that stopped answering (a restart). */
const RECONNECT_FOR_MS = 120_000;
/** The first pause before reconnecting; it doubles up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 5_000;

/**
 * Follows the job until it ends and returns it as last seen. The hub replays stored events and metrics on
 * every connection; events already shown are recognised by their seq, metrics by their count (the hub
 * sends them in the order it stored them). A hub that cannot be reached on the first try is an error at
 * once; one that drops a watch that was working is retried for two minutes.
 */
export async function followJob(client: Client<typeof JobService>, jobId: string, out: WatchOutput, signal: AbortSignal): Promise<Job | undefined> {
  let backoff = FIRST_BACKOFF_MS;
  let lastJob: Job | undefined;
  let lastSeq = -1n;
  let metricsShown = 0;
  let connected = false;
  let failingSince: number | undefined;
  for (;;) {
    let metricsThisStream = 0;
    try {
      for await (const item of client.watchJob({ jobId }, { signal })) {
        connected = true;
        failingSince = undefined;
        backoff = FIRST_BACKOFF_MS;
        switch (item.item.case) {
          case "event":
            if (item.item.value.seq <= lastSeq) continue;
            lastSeq = item.item.value.seq;
            break;
          case "metric":
            if (++metricsThisStream <= metricsShown) continue;
            metricsShown = metricsThisStream;
            break;
          case "job":
            lastJob = item.item.value;
            break;
          default:
            continue;
        }
        out.item(item);
      }
      if (lastJob && isEnded(lastJob.state)) return lastJob;
      throw new ConnectError("the hub ended the watch before the job ended", Code.Unavailable);
    } catch (e) {
      if (signal.aborted) throw e;
      const err = ConnectError.from(e);
      if (err.code !== Code.Unavailable || !connected) throw e;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > RECONNECT_FOR_MS) throw e;
      out.notice(`lost the hub (${err.rawMessage}); reconnecting in ${(backoff / 1000).toFixed(1)} s`);
      await delay(backoff, undefined, { signal });
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
}

/** One JSON object per item on `stdout`, nothing else; notices go to `stderr`. */
export function jsonOutput(stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): WatchOutput {
  return {
    item: (item) => void stdout.write(toJsonString(WatchJobResponseSchema, item) + "\n"),
    notice: (line) => void stderr.write(line + "\n"),
    end() {},
  };
}

/** How often plain output prints metrics that arrived with nothing else. */
const METRIC_FLUSH_MS = 2_000;

/** Appended lines, for logs and CI: events, progress changes, metrics grouped per round and trust. */
export function plainOutput(view: JobView, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): WatchOutput {
  let timer: NodeJS.Timeout | undefined;
  const write = (lines: string[]) => lines.length && stdout.write(lines.map((l) => l + "\n").join(""));
  const flushMetrics = () => {
    clearTimeout(timer);
    timer = undefined;
    write(view.takeMetricLines());
  };
  return {
    item(item) {
      const lines = view.apply(item);
      if (item.item.case === "metric") {
        timer ??= setTimeout(flushMetrics, METRIC_FLUSH_MS).unref();
        return;
      }
      if (view.hasPendingMetrics) flushMetrics();
      write([...lines, ...view.changes()]);
    },
    notice: (line) => void stderr.write(line + "\n"),
    end(jobEnded) {
      flushMetrics();
      if (jobEnded) write(view.summary());
    },
  };
}

/** Redraws per second at most, however fast items arrive (a replay sends thousands at once). */
const REDRAW_MS = 100;

/**
 * A terminal: event lines scroll above a block (the headline, a bar per trust, the latest metrics) that
 * is erased and redrawn in place with ANSI cursor movement.
 */
export function ttyOutput(view: JobView, stdout: NodeJS.WriteStream): WatchOutput {
  let frameLines = 0;
  let pending: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const fit = (line: string) => {
    const columns = stdout.columns || 120;
    return line.length >= columns ? line.slice(0, columns - 2) + "…" : line;
  };
  const draw = (frame: string[]) => {
    clearTimeout(timer);
    timer = undefined;
    // Up to the block's first line (CPL), erase to the end of the screen (ED), then scroll and redraw.
    const erase = frameLines ? `\x1b[${frameLines}F\x1b[J` : "";
    stdout.write(erase + [...pending, ...frame.map(fit)].map((l) => l + "\n").join(""));
    pending = [];
    frameLines = frame.length;
  };
  return {
    item(item) {
      pending.push(...view.apply(item));
      timer ??= setTimeout(() => draw(view.frame()), REDRAW_MS).unref();
    },
    notice(line) {
      pending.push(line);
      draw(view.frame());
    },
    end(jobEnded) {
      // The last block stays on screen: it already holds the final state and each trust's counts.
      draw(view.frame());
      frameLines = 0;
      if (jobEnded) stdout.write(view.closing().map((l) => l + "\n").join(""));
    },
  };
}
