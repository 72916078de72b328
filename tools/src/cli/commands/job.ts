import { statSync } from "node:fs";
import * as path from "node:path";
import { create, toJson, toJsonString } from "@bufbuild/protobuf";
import { JobKind, JobSchema, JobService, MetricPointSchema, WatchJobResponseSchema, type Job, type MetricPoint } from "@flip/gen/flip/hub/v1/training_pb.js";
import { requireOption, stringOption, UsageError, type CliArgs, type CliCommand, type CliContext } from "../command.js";
import { bytesLabel, describeJob, jobHeadline, jobsTable, metricsTable } from "../training/describe.js";
import { INTERRUPTED_EXIT, interruptible, InterruptedError } from "../training/interrupt.js";
import { JobView } from "../training/job-view.js";
import { exitCodeFor, followJob, jsonOutput, plainOutput, ttyOutput, WATCH_EXIT } from "../training/job-watch.js";
import { createOnce } from "../training/retry-once.js";
import { downloadWeights, WeightsIntegrityError } from "../training/weights-download.js";
import { oneId } from "./project.js";

const jobJson = (j: Job | undefined) => (j ? toJson(JobSchema, j) : null);

const UINT32_MAX = 0xffff_ffff;

/** The most metric points `flip job metrics` fetches; narrow with --label, --trust or --round beyond that. */
const MAX_METRICS = 50_000;

/** "90s", "10m", "1h", "1h30m" → seconds. A bare number is refused: minutes or seconds would be a guess. */
export function parseDurationSeconds(option: string, raw: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(raw.trim());
  if (!m || raw.trim() === "") throw new UsageError(`--${option}: expected a duration such as 90s, 10m, 1h or 1h30m, got "${raw}"`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/** A whole-number option from `min` to `max` (a uint32 by default), or 0 ("the hub's default") when absent. */
export function wholeNumberOption(args: CliArgs, name: string, min: number, max = UINT32_MAX): number {
  const raw = stringOption(args, name);
  if (raw === "") return 0;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new UsageError(`--${name}: expected a whole number ${max === UINT32_MAX ? `of at least ${min}` : `from ${min} to ${max}`}, got "${raw}"`);
  }
  return Number(raw);
}

export function parseJobKind(raw: string): JobKind {
  switch (raw.trim().toLowerCase()) {
    case "":
    case "train":
      return JobKind.TRAIN;
    case "evaluate":
      return JobKind.EVALUATE;
    default:
      throw new UsageError(`--type: expected train or evaluate, got "${raw}"`);
  }
}

/** "north,south" → ["north", "south"]; repeated --trusts add up. */
export function parseTrusts(values: string[]): string[] {
  const trusts = values.flatMap((v) => v.split(",")).map((t) => t.trim()).filter(Boolean);
  if (trusts.length === 0) throw new UsageError("--trusts is required, e.g. --trusts north,south");
  const dupe = trusts.find((t, i) => trusts.indexOf(t) !== i);
  if (dupe) throw new UsageError(`--trusts: "${dupe}" is named twice`);
  return trusts;
}

/** Follows a job to its end on stdout (JSON lines, appended lines, or a redrawn block on a terminal). */
async function watchToEnd(ctx: CliContext, jobId: string): Promise<number> {
  const view = new JobView(jobId);
  const stdout = ctx.stdout as NodeJS.WriteStream;
  const out = ctx.json
    ? jsonOutput(ctx.stdout, ctx.stderr)
    : stdout.isTTY === true && ctx.env.TERM !== "dumb"
      ? ttyOutput(view, stdout)
      : plainOutput(view, ctx.stdout, ctx.stderr);
  let job: Job | undefined;
  try {
    job = await interruptible((signal) => followJob(ctx.client(JobService), jobId, out, signal));
  } catch (e) {
    out.end(false);
    if (!(e instanceof InterruptedError)) throw e;
    ctx.stderr.write(`stopped watching; job ${jobId} keeps running on the hub (flip job watch ${jobId} to follow it again, flip job abort ${jobId} to stop it)\n`);
    return INTERRUPTED_EXIT;
  }
  out.end(true);
  if (ctx.json && job) ctx.stderr.write(`${jobHeadline(job)}\n`);
  return exitCodeFor(job);
}

const watchExitNote = `Exit code ${WATCH_EXIT.completed} when the job completed, ${WATCH_EXIT.failed} when it failed, ${WATCH_EXIT.aborted} when it was aborted, ${INTERRUPTED_EXIT} on Ctrl-C (the job keeps running).`;

export const jobCommands: CliCommand[] = [
  {
    path: ["job", "start"],
    summary:
      "Queue a federated job of a model on trusts that approved its project and froze its cohort. Without --rounds a training job " +
      "runs the hub's default (3); --min-trusts is the updates a round needs (default: every trust); --round-timeout defaults to 1h. " +
      `With --watch, follow it like \`flip job watch\`. ${watchExitNote}`,
    usage: "--model <id> --trusts <code,code,...> [--rounds 5] [--min-trusts 2] [--round-timeout 10m] [--gpus 1] [--type train|evaluate] [--watch]",
    options: {
      model: { type: "string" },
      trusts: { type: "string", multiple: true },
      rounds: { type: "string" },
      "min-trusts": { type: "string" },
      "round-timeout": { type: "string" },
      gpus: { type: "string" },
      type: { type: "string" },
      watch: { type: "boolean", default: false },
    },
    async run(ctx, args) {
      const modelId = requireOption(args, "model");
      const trusts = parseTrusts((args.values.trusts as string[] | undefined) ?? []);
      const kind = parseJobKind(stringOption(args, "type"));
      // The hub states the upper bounds of rounds and GPUs; the CLI checks only what it can name a flag for.
      const rounds = wholeNumberOption(args, "rounds", 1);
      if (kind === JobKind.EVALUATE && rounds > 1) throw new UsageError("--rounds: an evaluation job has exactly one round; leave --rounds out");
      const minUpdates = wholeNumberOption(args, "min-trusts", 1, trusts.length);
      const roundTimeoutSeconds = args.values["round-timeout"] === undefined ? 0 : parseDurationSeconds("round-timeout", stringOption(args, "round-timeout"));
      if (args.values["round-timeout"] !== undefined && (roundTimeoutSeconds < 10 || roundTimeoutSeconds > 7 * 86400)) {
        throw new UsageError("--round-timeout: must be from 10s to 7 days (168h)");
      }
      const gpusPerTrust = wholeNumberOption(args, "gpus", 0);
      const client = ctx.client(JobService);
      const { job } = await createOnce(
        (idempotencyKey) => client.createJob({ modelId, trusts, rounds, minUpdates, roundTimeoutSeconds, gpusPerTrust, kind, idempotencyKey }),
        (e) => ctx.stderr.write(`the hub did not answer (${e.rawMessage}); retrying once with the same idempotency key\n`),
      );
      if (!job) return 1;
      if (!args.values.watch) {
        ctx.print(`${jobHeadline(job)}\nfollow it: flip job watch ${job.id}`, { job: jobJson(job) });
        return;
      }
      // With --watch --json every line of stdout is one WatchJob item, starting with the job as created.
      if (ctx.json) ctx.stdout.write(toJsonString(WatchJobResponseSchema, create(WatchJobResponseSchema, { item: { case: "job", value: job } })) + "\n");
      else ctx.stdout.write(`${jobHeadline(job)}\n`);
      return watchToEnd(ctx, job.id);
    },
  },
  {
    path: ["job", "watch"],
    summary:
      "Follow a job live: its queue position, then per round a bar per trust (waiting, training, update received, missed and why), " +
      "the latest metrics and the final state. On a terminal the view redraws in place; otherwise lines are appended. " +
      `--json prints one JSON object per event, metric or job change. ${watchExitNote}`,
    usage: "<job id>",
    positionals: true,
    async run(ctx, args) {
      return watchToEnd(ctx, oneId(args.positionals, "job"));
    },
  },
  {
    path: ["job", "get"],
    summary: "Show a job: state, queue position or round, each trust's part, the round history and why it ended.",
    usage: "<job id>",
    positionals: true,
    async run(ctx, args) {
      const { job } = await ctx.client(JobService).getJob({ jobId: oneId(args.positionals, "job") });
      ctx.print(job ? describeJob(job) : "-", { job: jobJson(job) });
    },
  },
  {
    path: ["job", "list"],
    summary: "List jobs you may see, newest first, optionally of one model.",
    usage: "[--model <id>]",
    options: { model: { type: "string" } },
    async run(ctx, args) {
      const { jobs } = await ctx.client(JobService).listJobs({ modelId: stringOption(args, "model"), page: { pageSize: 500 } });
      ctx.print(jobs.length === 0 ? "no jobs" : jobsTable(jobs), { jobs: jobs.map(jobJson) });
    },
  },
  {
    path: ["job", "abort"],
    summary: "Abort a job at any point; every trust's workload is stopped and the job ends aborted with the reason.",
    usage: "<job id> [--reason <text>]",
    positionals: true,
    options: { reason: { type: "string" } },
    async run(ctx, args) {
      const { job } = await ctx.client(JobService).abortJob({ jobId: oneId(args.positionals, "job"), reason: stringOption(args, "reason") });
      ctx.print(job ? jobHeadline(job) : "-", { job: jobJson(job) });
    },
  },
  {
    path: ["job", "metrics"],
    summary: "List a job's metric points (per round, trust and label), filtered by --label, --trust (code or id) and --round.",
    usage: "<job id> [--label <label>] [--trust <code|id>] [--round <n>]",
    positionals: true,
    options: { label: { type: "string" }, trust: { type: "string" }, round: { type: "string" } },
    async run(ctx, args) {
      const jobId = oneId(args.positionals, "job");
      const filter = { jobId, label: stringOption(args, "label"), trustId: stringOption(args, "trust"), round: wholeNumberOption(args, "round", 1) };
      const client = ctx.client(JobService);
      const metrics: MetricPoint[] = [];
      let pageToken = "";
      do {
        const r = await client.listMetrics({ ...filter, page: { pageSize: 500, pageToken } });
        metrics.push(...r.metrics);
        pageToken = r.page?.nextPageToken ?? "";
      } while (pageToken && metrics.length < MAX_METRICS);
      if (pageToken) ctx.stderr.write(`showing the first ${metrics.length} points; narrow with --label, --trust or --round\n`);
      ctx.print(metrics.length === 0 ? "no metrics" : metricsTable(metrics), { metrics: metrics.map((m) => toJson(MetricPointSchema, m)) });
    },
  },
  {
    path: ["job", "download"],
    summary:
      "Download a job's global weights (safetensors): the latest, or one round's with --round. The file appears at --out only once " +
      "its size and SHA-256 match what the hub sent; exit code 1 otherwise.",
    usage: "<job id> --out <model.safetensors> [--round <n>]",
    positionals: true,
    options: { out: { type: "string" }, round: { type: "string" } },
    async run(ctx, args) {
      const jobId = oneId(args.positionals, "job");
      const out = requireOption(args, "out");
      const round = wholeNumberOption(args, "round", 1);
      if (statSync(out, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--out ${out} is a directory; give a file name, e.g. ${path.join(out, "model.safetensors")}`);
      if (!statSync(path.dirname(path.resolve(out)), { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--out ${out}: the directory ${path.dirname(out)} does not exist`);
      try {
        const got = await interruptible((signal) => downloadWeights(ctx.client(JobService), { jobId, round }, out, ctx.stderr, signal));
        ctx.print(`saved the round ${got.round} weights of job ${jobId} to ${got.path}\nsize: ${bytesLabel(got.sizeBytes)} (${got.sizeBytes} bytes)\nsha256: ${got.sha256}`, {
          jobId,
          round: got.round,
          path: got.path,
          sizeBytes: got.sizeBytes,
          sha256: got.sha256,
        });
        return 0;
      } catch (e) {
        if (e instanceof InterruptedError) {
          ctx.stderr.write(`download stopped; nothing was saved at ${out}. Job ${jobId} is not affected (it keeps running on the hub if it was)\n`);
          return INTERRUPTED_EXIT;
        }
        if (e instanceof WeightsIntegrityError) {
          ctx.stderr.write(`error: ${e.message}\n`);
          return 1;
        }
        const code = (e as NodeJS.ErrnoException).code;
        if (typeof code === "string" && e instanceof Error && "syscall" in e) {
          ctx.stderr.write(`error: cannot write ${out} (${code})\n`);
          return 1;
        }
        throw e;
      }
    },
  },
];
