import { useId, useState } from "react";
import { ImagingService, ImagingState, type TrustImagingStatus } from "@flip/gen/flip/hub/v1/imaging_pb.js";
import type { ImagingImportOutput } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { useClient } from "../../session/session-context.js";
import { ConfirmDialog } from "../../ui/confirm.js";
import { formatAgo, formatCount, formatTime } from "../../ui/format.js";
import { Badge, ErrorMessage, LiveStatus, Loading, Panel, type Tone } from "../../ui/page.js";
import { useEvery, useNow } from "../../ui/use-every.js";
import { useLoad } from "../../ui/use-load.js";
import "./projects.css";
import "./project-imaging.css";

/** How often the status is read again while a trust imports or deletes (the trusts report counts as they go). */
const LIVE_MS = 3_000;

const STATE: Record<ImagingState, [string, Tone]> = {
  [ImagingState.UNSPECIFIED]: ["unknown", "neutral"],
  [ImagingState.NOT_REQUESTED]: ["not requested", "neutral"],
  [ImagingState.IMPORTING]: ["importing", "info"],
  [ImagingState.DONE]: ["done", "good"],
  [ImagingState.FAILED]: ["failed", "bad"],
  [ImagingState.DELETING]: ["deleting", "warn"],
  [ImagingState.DELETED]: ["deleted", "neutral"],
};

const live = (t: TrustImagingStatus) => t.state === ImagingState.IMPORTING || t.state === ImagingState.DELETING;
const requested = (t: TrustImagingStatus) => t.state !== ImagingState.NOT_REQUESTED && t.state !== ImagingState.UNSPECIFIED;
/** Studies that have an outcome, good or bad. */
const settled = (c: ImagingImportOutput) => c.studiesImported + c.studiesFailed + c.studiesNotFound + c.studiesAmbiguous;
/** Studies that failed can succeed on another import; done with some failed is worth a look. */
const someFailed = (c: ImagingImportOutput | undefined) => (c?.studiesFailed ?? 0n) > 0n;

/**
 * A project's imaging at each trust it is staged at, as counts and grouped reasons (never an identifier:
 * the hub has none), read again while a trust imports; the owner or an Admin can ask for an import again.
 */
export function ProjectImaging({ projectId, canEdit }: { projectId: string; canEdit: boolean }) {
  const imaging = useClient(ImagingService);
  const status = useLoad((signal) => imaging.getImagingStatus({ projectId }, { signal }), [projectId]);
  const trusts = status.data?.trusts ?? [];
  useEvery(LIVE_MS, status.reload, trusts.some(live));
  const now = useNow(15_000);
  const [asking, setAsking] = useState(false);
  const [nifti, setNifti] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const anyRequested = trusts.some(requested);
  const hintId = useId();

  const importAgain = () => {
    setBusy(true);
    setError(undefined);
    imaging
      .importImaging({ projectId, trusts: [], convertToNifti: nifti })
      .then(() => status.reload(), setError)
      .finally(() => {
        setBusy(false);
        setAsking(false);
      });
  };

  return (
    <Panel
      title="Imaging"
      actions={
        canEdit && anyRequested ? (
          <button
            type="button"
            className="button button-small"
            disabled={busy}
            onClick={() => {
              setNifti(trusts.some((t) => requested(t) && t.convertToNifti));
              setAsking(true);
            }}
          >
            Import again
          </button>
        ) : null
      }
    >
      <ErrorMessage error={status.error} prefix={status.data ? "Could not refresh the imaging status" : "Could not load the imaging status"} />
      <ErrorMessage error={error} prefix="Could not ask for the import" />
      {status.data ? (
        anyRequested ? (
          <>
            <LiveStatus>{summary(trusts)}</LiveStatus>
            <div className="projects-imaging-cards">
              {trusts.map((t) => (
                <TrustImagingCard key={t.trustId} status={t} now={now} />
              ))}
            </div>
          </>
        ) : (
          <p className="projects-muted">
            {trusts.length === 0
              ? "This project is not staged at any trust, so no trust imports imaging for it."
              : "No trust has approved this project and frozen its cohort yet; each imports its imaging once it has."}
          </p>
        )
      ) : status.error ? null : (
        <Loading label="Loading the imaging status…" />
      )}
      <ConfirmDialog open={asking} title="Import the imaging again?" confirmLabel="Import again" busy={busy} onCancel={() => setAsking(false)} onConfirm={importAgain}>
        <p>
          Every trust that approved the project and froze its cohort imports the cohort's studies again: what it imported is kept, and studies that failed or were not found
          are tried again.
        </p>
        <label className="checkbox">
          <input type="checkbox" checked={nifti} onChange={(e) => setNifti(e.target.checked)} aria-describedby={hintId} />
          <span>Convert to NIfTI</span>
        </label>
        <p className="hint" id={hintId}>
          Each imported DICOM series is converted to NIfTI as well. The choice also holds for trusts that approve later.
        </p>
      </ConfirmDialog>
    </Panel>
  );
}

/** One sentence on where the imports stand, for the live region: it changes only when a state does. */
function summary(trusts: TrustImagingStatus[]): string {
  const importing = trusts.filter((t) => t.state === ImagingState.IMPORTING).length;
  const deleting = trusts.filter((t) => t.state === ImagingState.DELETING).length;
  const failed = trusts.filter((t) => t.state === ImagingState.FAILED).length;
  const parts = [
    importing ? `importing at ${importing} ${importing === 1 ? "trust" : "trusts"}` : "",
    deleting ? `deleting at ${deleting} ${deleting === 1 ? "trust" : "trusts"}` : "",
    failed ? `failed at ${failed} ${failed === 1 ? "trust" : "trusts"}` : "",
  ].filter(Boolean);
  if (parts.length === 0) return "No import is running.";
  const text = parts.join(", ");
  return `${text[0]!.toUpperCase()}${text.slice(1)}.`;
}

/** One trust's imaging: its state, counts, reasons and error; its size does not change as counts arrive. */
function TrustImagingCard({ status: t, now }: { status: TrustImagingStatus; now: number }) {
  const headingId = `imaging-${t.trustId}`;
  const [words, baseTone] = STATE[t.state];
  const tone: Tone = t.state === ImagingState.DONE && someFailed(t.counts) ? "warn" : baseTone;
  const c = t.counts;
  return (
    <section className="projects-imaging-card" aria-labelledby={headingId}>
      <header className="projects-imaging-card-header">
        <h3 id={headingId}>{t.trustCode}</h3>
        <Badge tone={tone}>{words}</Badge>
      </header>
      {!requested(t) ? (
        <p className="projects-muted">Not asked yet: this trust has not approved the project, or its cohort is not frozen yet.</p>
      ) : (
        <>
          {c ? <Progress trustCode={t.trustCode} counts={c} /> : null}
          <dl className="projects-imaging-counts">
            <Count label="Imported" value={c?.studiesImported} />
            <Count label="Failed" value={c?.studiesFailed} />
            <Count label="Not found" value={c?.studiesNotFound} />
            <Count label="Ambiguous" value={c?.studiesAmbiguous} />
            <Count label="Queued" value={c?.studiesQueued} />
            <Count label="Importing" value={c?.studiesImporting} />
            <Count label="Images stored" value={c?.imagesStored} />
            <Count label="NIfTI series" value={t.convertToNifti ? c?.niftiSeries : undefined} />
          </dl>
          <p className="projects-small">
            NIfTI conversion {t.convertToNifti ? "on" : "off"} · updated <span title={formatTime(t.updatedAt)}>{formatAgo(t.updatedAt, now)}</span>
            {c?.waitingForWindow ? " · waiting for the trust's import window to open" : ""}
          </p>
          <Reasons status={t} />
        </>
      )}
    </section>
  );
}

function Progress({ trustCode, counts: c }: { trustCode: string; counts: ImagingImportOutput }) {
  if (c.studiesRequested === 0n) return <p className="projects-imaging-progress-text">The frozen cohort has no imaging studies.</p>;
  const done = settled(c);
  return (
    <div className="projects-imaging-progress">
      <progress className="progress" value={Number(done)} max={Number(c.studiesRequested)} aria-label={`Studies with an outcome at ${trustCode}`} />
      <p className="projects-imaging-progress-text">
        {formatCount(done)} of {formatCount(c.studiesRequested)} studies have an outcome
      </p>
    </div>
  );
}

/** The reasons box's sentence when the trust gave no reason and no error. */
function nothingToSay(state: ImagingState): string {
  switch (state) {
    case ImagingState.FAILED:
      return "The import failed without saying why.";
    case ImagingState.DELETING:
      return "The trust is deleting the project's research copies.";
    case ImagingState.DELETED:
      return "The trust deleted the project's research copies.";
    case ImagingState.IMPORTING:
      return "No study failed, went unfound or was ambiguous so far.";
    default:
      return "No study failed, went unfound or was ambiguous.";
  }
}

function Count({ label, value }: { label: string; value: bigint | undefined }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{value === undefined ? "—" : formatCount(value)}</dd>
    </div>
  );
}

/** Why studies were not imported (grouped at the trust), and the task's error; in a box of fixed height. */
function Reasons({ status: t }: { status: TrustImagingStatus }) {
  const reasons = t.counts?.reasons ?? [];
  const failed = t.state === ImagingState.FAILED;
  return (
    <div className="projects-imaging-reasons" tabIndex={0} role="group" aria-label={`Reasons at ${t.trustCode}`}>
      {t.error ? <p className={failed ? "error" : "projects-imaging-note"}>{failed ? `The import failed: ${t.error}` : t.error}</p> : null}
      {reasons.length > 0 ? (
        <ul aria-label={`Studies not imported at ${t.trustCode}, by reason`}>
          {reasons.map((r) => (
            <li key={r.reason}>
              <span className="projects-imaging-reason-count">{formatCount(r.count)}</span>
              <span>{r.reason}</span>
            </li>
          ))}
        </ul>
      ) : t.error ? null : (
        <p className="projects-muted">{nothingToSay(t.state)}</p>
      )}
    </div>
  );
}
