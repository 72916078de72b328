import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AccessionStatusSchema, ImportStateSchema } from "@flip/gen/flip/imaging/v1/imaging_pb.js";
import { createImagingClient } from "@flip/imaging/client.js";
import { DecisionState, FreezeState, ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { ImagingService, ImagingState, ImagingStateSchema, TrustImagingStatusSchema, type TrustImagingStatus } from "@flip/gen/flip/hub/v1/imaging_pb.js";
import { requireOption, stringOption, UsageError, type CliCommand, type CliContext } from "../command.js";
import { table, when, valueLabel } from "../format.js";
import { INTERRUPTED_EXIT, interruptible, InterruptedError } from "../training/interrupt.js";
import { parseDurationSeconds } from "./job.js";

/** How often `flip imaging status --watch` asks the hub, unless --interval says otherwise. */
const WATCH_INTERVAL_S = 5;

const stateLabel = (s: TrustImagingStatus) => {
  const label = valueLabel(ImagingStateSchema, s.state, "IMAGING_STATE_");
  return s.state === ImagingState.IMPORTING && s.counts?.waitingForWindow ? `${label} (waiting for the import window)` : label;
};

/** One row per trust, then each trust's reasons (grouped, with how many) and errors. */
export function describeImagingStatus(trusts: TrustImagingStatus[]): string {
  if (trusts.length === 0) return "the project is not staged at any trust";
  const n = (v: bigint | undefined) => String(v ?? 0n);
  const rows = trusts.map((s) => {
    const c = s.counts;
    const requested = s.state !== ImagingState.NOT_REQUESTED;
    return [
      s.trustCode,
      stateLabel(s),
      requested && c ? `${n(c.studiesImported)}/${n(c.studiesRequested)}` : "-",
      requested && c ? n(c.studiesFailed) : "-",
      requested && c ? n(c.studiesNotFound) : "-",
      requested && c ? n(c.studiesAmbiguous) : "-",
      requested && c ? `${n(c.studiesQueued)}/${n(c.studiesImporting)}` : "-",
      s.convertToNifti ? n(c?.niftiSeries) : "-",
      when(s.updatedAt),
    ];
  });
  const lines = [table(["TRUST", "STATE", "IMPORTED", "FAILED", "NOT FOUND", "AMBIGUOUS", "QUEUED/IMPORTING", "NIFTI SERIES", "UPDATED"], rows)];
  for (const s of trusts) {
    const notes = [...(s.counts?.reasons ?? []).map((r) => `  ${r.count} × ${r.reason}`), ...(s.error ? [`  error: ${s.error}`] : [])];
    if (notes.length) lines.push("", `${s.trustCode}:`, ...notes);
  }
  return lines.join("\n");
}

const statusJson = (projectId: string, trusts: TrustImagingStatus[]) => ({ projectId, trusts: trusts.map((s) => toJson(TrustImagingStatusSchema, s)) });

/**
 * Whether nothing more will change without someone asking: no import or deletion under way, and no
 * approved trust still freezing its cohort (its import starts when the freeze ends).
 */
async function settled(ctx: CliContext, projectId: string, trusts: TrustImagingStatus[]): Promise<boolean> {
  if (trusts.some((s) => s.state === ImagingState.IMPORTING || s.state === ImagingState.DELETING)) return false;
  const { project } = await ctx.client(ProjectService).getProject({ projectId });
  return !(project?.decisions ?? []).some((d) => d.state === DecisionState.APPROVED && d.freezeState === FreezeState.PENDING);
}

/** 0 when every trust asked to import has imported (DONE), 1 otherwise (a failure, a deletion, nothing asked). */
function watchExit(trusts: TrustImagingStatus[]): number {
  const asked = trusts.filter((s) => s.state !== ImagingState.NOT_REQUESTED);
  return asked.length > 0 && asked.every((s) => s.state === ImagingState.DONE) ? 0 : 1;
}

/** Prints the status whenever it changes until it settles (JSON lines with --json). */
async function watchImaging(ctx: CliContext, projectId: string, intervalS: number): Promise<number> {
  let shown = "";
  try {
    return await interruptible(async (signal) => {
      for (;;) {
        const { trusts } = await ctx.client(ImagingService).getImagingStatus({ projectId }, { signal });
        const text = ctx.json ? JSON.stringify(statusJson(projectId, trusts)) : describeImagingStatus(trusts);
        if (text !== shown) ctx.stdout.write(`${shown && !ctx.json ? "\n" : ""}${text}\n`);
        shown = text;
        if (await settled(ctx, projectId, trusts)) return watchExit(trusts);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, intervalS * 1000);
          signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
        });
        signal.throwIfAborted();
      }
    });
  } catch (e) {
    if (!(e instanceof InterruptedError)) throw e;
    ctx.stderr.write(`stopped watching; the trusts' imports go on (flip imaging status --project ${projectId} to look again)\n`);
    return INTERRUPTED_EXIT;
  }
}

/** Each accession's import at the trust, as its imaging service keeps it (trust-internal: never asks the hub). */
async function localAccessions(ctx: CliContext, projectId: string, imagingUrl: string, stateFilter: string): Promise<void> {
  const internalKey = ctx.env.FLIP_TRUST_INTERNAL_KEY;
  if (!internalKey) throw new UsageError("set FLIP_TRUST_INTERNAL_KEY to the trust-internal key the imaging service was started with");
  const status = await createImagingClient({ baseUrl: imagingUrl, internalKey }).getImportStatus({ projectId });
  const label = (state: number) => valueLabel(ImportStateSchema, state, "IMPORT_STATE_");
  const rows = status.accessions.filter((a) => !stateFilter || label(a.state) === stateFilter);
  ctx.print(
    rows.length === 0
      ? "no accession in that state"
      : table(
          ["ACCESSION", "STATE", "ATTEMPTS", "IMAGES", "UPDATED", "REASON"],
          rows.map((a) => [a.accessionNumber, label(a.state), String(a.attempts), String(a.instances), a.updatedAt ? timestampDate(a.updatedAt).toISOString() : "-", a.reason || "-"]),
        ),
    { projectId, convertToNifti: status.convertToNifti, accessions: rows.map((a) => toJson(AccessionStatusSchema, a)) },
  );
}

export const imagingCommands: CliCommand[] = [
  {
    path: ["imaging", "status"],
    summary:
      "Show each trust's import of a project's imaging, as counts: imported of requested, failed, not found, ambiguous, queued and " +
      "importing, NIfTI series, and why studies were not imported. With --watch, print it again whenever it changes until no import " +
      "or deletion is under way; exit 0 when every trust asked to import is done, 1 otherwise.",
    usage: "--project <id> [--watch [--interval 5s]]",
    options: { project: { type: "string" }, watch: { type: "boolean", default: false }, interval: { type: "string" } },
    async run(ctx, args) {
      const projectId = requireOption(args, "project");
      if (args.values.interval !== undefined && !args.values.watch) throw new UsageError("--interval goes with --watch");
      if (args.values.watch) {
        const interval = args.values.interval === undefined ? WATCH_INTERVAL_S : parseDurationSeconds("interval", String(args.values.interval));
        if (interval < 1) throw new UsageError("--interval: at least 1s");
        return await watchImaging(ctx, projectId, interval);
      }
      const { trusts } = await ctx.client(ImagingService).getImagingStatus({ projectId });
      ctx.print(describeImagingStatus(trusts), statusJson(projectId, trusts));
      return 0;
    },
  },
  {
    path: ["imaging", "import"],
    summary:
      "Ask trusts to import (again) a project's frozen cohort's studies: failed ones are retried, imported ones kept. Without --trust, " +
      "every trust that approved and froze the cohort. --nifti converts each series to NIfTI too; the choice is remembered for trusts " +
      "that approve later. The project's owner or an Admin.",
    usage: "--project <id> [--trust <code|id>]... [--nifti]",
    options: { project: { type: "string" }, trust: { type: "string", multiple: true }, nifti: { type: "boolean", default: false } },
    async run(ctx, args) {
      const projectId = requireOption(args, "project");
      const { trusts } = await ctx.client(ImagingService).importImaging({
        projectId,
        trusts: (args.values.trust as string[] | undefined) ?? [],
        convertToNifti: Boolean(args.values.nifti),
      });
      ctx.print(`${describeImagingStatus(trusts)}\nfollow it: flip imaging status --project ${projectId} --watch`, statusJson(projectId, trusts));
    },
  },
  {
    path: ["imaging", "accessions"],
    summary:
      "For a trust's operators: each accession number of a project's import at this trust, with its state, attempts and reason, asked " +
      "of the trust's own imaging service (--imaging or FLIP_IMAGING_URL, with FLIP_TRUST_INTERNAL_KEY). The hub is not asked and " +
      "never holds these identifiers. --state keeps one state (queued, importing, imported, failed, not-found, ambiguous).",
    usage: "--project <id> [--imaging <url>] [--state <state>]",
    options: { project: { type: "string" }, imaging: { type: "string" }, state: { type: "string" } },
    async run(ctx, args) {
      const projectId = requireOption(args, "project");
      const imagingUrl = stringOption(args, "imaging") || ctx.env.FLIP_IMAGING_URL || "";
      if (!imagingUrl) throw new UsageError("give --imaging <url> (or FLIP_IMAGING_URL): the trust's imaging service, e.g. http://127.0.0.1:7782");
      const state = stringOption(args, "state");
      const states = ["queued", "importing", "imported", "failed", "not-found", "ambiguous"];
      if (state && !states.includes(state)) throw new UsageError(`--state: one of ${states.join(", ")}`);
      await localAccessions(ctx, projectId, imagingUrl, state);
    },
  },
];
