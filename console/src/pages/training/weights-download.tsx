import { useEffect, useRef, useState } from "react";
import { ConnectError } from "@connectrpc/connect";
import { JobService, JobState, type Job } from "@flip/gen/flip/hub/v1/training_pb.js";
import { useClient } from "../../session/session-context.js";
import { formatBytes } from "../../ui/format.js";
import { ErrorMessage, LiveStatus } from "../../ui/page.js";

type Download =
  | { phase: "idle" }
  | { phase: "receiving"; received: number; size: number }
  | { phase: "done"; url: string; name: string; size: number; sha256: string }
  | { phase: "failed"; error: unknown };

const hex = (bytes: ArrayBuffer) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

/** Collects a job's latest global weights (DownloadWeights) and checks them against the checksum the hub sends last. */
async function fetchWeights(
  jobs: ReturnType<typeof useClient<typeof JobService>>,
  jobId: string,
  signal: AbortSignal,
  onProgress: (received: number, size: number) => void,
): Promise<{ blob: Blob; sha256: string }> {
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let received = 0;
  let sha256 = "";
  let size = 0;
  for await (const m of jobs.downloadWeights({ jobId, round: 0 }, { signal })) {
    if (Number(m.offset) !== received) throw new Error("The weights arrived out of order; download them again.");
    if (m.data.length) {
      chunks.push(new Uint8Array(m.data));
      received += m.data.length;
    }
    size = Number(m.sizeBytes);
    if (m.sha256) sha256 = m.sha256;
    onProgress(received, size);
  }
  if (!sha256) throw new Error("The download ended before the hub sent its checksum; download the weights again.");
  if (received !== size) throw new Error(`Only ${formatBytes(received)} of ${formatBytes(size)} arrived; download the weights again.`);
  if (!crypto.subtle) throw new Error("This page is not served over HTTPS, so the browser cannot check the download's SHA-256; use `flip job download` instead.");
  const blob = new Blob(chunks, { type: "application/octet-stream" });
  const actual = hex(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
  if (actual !== sha256) {
    throw new Error(`The download did not match the hub's checksum (SHA-256 ${actual.slice(0, 12)}… instead of ${sha256.slice(0, 12)}…), so it was not saved. Download it again.`);
  }
  return { blob, sha256 };
}

/**
 * "Download final weights" (or the latest round's while the job runs): the chunks are collected in the
 * page, checked against the hub's SHA-256, and only then offered as <job id>.safetensors.
 */
export function WeightsDownload({ job }: { job: Job }) {
  const jobs = useClient(JobService);
  const [state, setState] = useState<Download>({ phase: "idle" });
  const abortRef = useRef<AbortController>(undefined);
  const urlRef = useRef<string>(undefined);
  useEffect(
    () => () => {
      abortRef.current?.abort();
      if (urlRef.current) URL.revokeObjectURL(urlRef.current);
    },
    [],
  );
  if (!job.globalWeightsArtifactId) return null;
  const final = job.state === JobState.COMPLETED;
  const label = final ? "Download final weights" : "Download latest weights";
  const start = async () => {
    abortRef.current?.abort();
    const abort = new AbortController();
    abortRef.current = abort;
    setState({ phase: "receiving", received: 0, size: 0 });
    try {
      const { blob, sha256 } = await fetchWeights(jobs, job.id, abort.signal, (received, size) => setState({ phase: "receiving", received, size }));
      if (urlRef.current) URL.revokeObjectURL(urlRef.current);
      const url = URL.createObjectURL(blob);
      urlRef.current = url;
      const name = `${job.id}.safetensors`;
      setState({ phase: "done", url, name, size: blob.size, sha256 });
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      a.click();
    } catch (e) {
      if (!abort.signal.aborted) setState({ phase: "failed", error: e });
    }
  };
  const busy = state.phase === "receiving";
  return (
    <div className="training-download">
      <button type="button" className="button" disabled={busy} onClick={() => void start()}>
        {busy ? "Downloading weights…" : label}
      </button>
      <div className="training-download-status">
        {state.phase === "receiving" ? (
          <>
            <progress className="progress" value={state.received} max={state.size || 1} aria-label="Weights downloaded" />
            <LiveStatus>
              {formatBytes(state.received)}
              {state.size ? ` of ${formatBytes(state.size)}` : ""}
            </LiveStatus>
          </>
        ) : null}
        {state.phase === "done" ? (
          <LiveStatus>
            Checked (SHA-256 <code title={state.sha256}>{state.sha256.slice(0, 12)}…</code>), {formatBytes(state.size)}.{" "}
            <a href={state.url} download={state.name}>
              Save {state.name} again
            </a>
          </LiveStatus>
        ) : null}
        {state.phase === "failed" ? <ErrorMessage error={state.error} prefix={state.error instanceof ConnectError ? "Could not download the weights" : undefined} /> : null}
      </div>
    </div>
  );
}
