import { useState } from "react";
import { AdminService, type RotateSigningKeyResponse } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { useClient } from "../../session/session-context.js";
import { ConfirmDialog } from "../../ui/confirm.js";
import { formatCount, formatTime } from "../../ui/format.js";
import { Badge, ErrorMessage, LiveStatus, Loading, Page, Panel } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";
import { useEvery } from "../../ui/use-every.js";
import "./admin.css";

/** While deployment mode is on, read again this often, so "safe to redeploy" turns true by itself. */
const REFRESH_ON_MS = 3_000;
/** While it is off, now and then: another admin may turn it on. */
const REFRESH_OFF_MS = 15_000;

/** Deployment mode (pausing new work for an upgrade) and the access-token signing key (Admin). */
export function DeploymentPage() {
  return (
    <Page title="Deployment" subtitle="Pause new work before upgrading the hub, and rotate the key that signs access tokens.">
      <DeploymentModePanel />
      <SigningKeyPanel />
    </Page>
  );
}

function DeploymentModePanel() {
  const admin = useClient(AdminService);
  const users = useClient(UserService);
  const mode = useLoad((signal) => admin.getDeploymentMode({}, { signal }), [admin]);
  const on = mode.data?.enabled ?? false;
  useEvery(on ? REFRESH_ON_MS : REFRESH_OFF_MS, mode.reload, mode.data !== undefined);
  const changedBy = mode.data?.changedBy ?? "";
  // "user:<id>" → the person's email; other actors ("system", "bootstrap-admin") as they are.
  const changer = useLoad(
    async (signal) => (changedBy.startsWith("user:") ? ((await users.getUser({ user: changedBy.slice(5) }, { signal })).user?.email ?? changedBy) : changedBy),
    [users, changedBy],
  );
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();

  const toggle = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await admin.setDeploymentMode({ enabled: !on });
      setConfirming(false);
      mode.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const m = mode.data;
  return (
    <Panel title="Deployment mode">
      <ErrorMessage error={mode.error} prefix="Could not read deployment mode" />
      {m ? (
        <>
          <dl className="facts admin-deployment-facts">
            <dt>Deployment mode</dt>
            <dd>{m.enabled ? <Badge tone="warn">On: new work paused</Badge> : <Badge tone="good">Off: work runs normally</Badge>}</dd>
            <dt>Safe to redeploy</dt>
            <dd>
              {m.safeToRedeploy ? (
                <Badge tone="good">Yes: nothing is running</Badge>
              ) : m.enabled ? (
                <Badge tone="warn">Not yet: work is still running</Badge>
              ) : (
                <Badge tone="neutral">No: turn deployment mode on first</Badge>
              )}
            </dd>
            <dt>Running tasks</dt>
            <dd>{formatCount(m.runningTasks)}</dd>
            <dt>Running jobs</dt>
            <dd>{formatCount(m.runningJobs)}</dd>
            <dt>Last changed</dt>
            <dd>
              {formatTime(m.changedAt)} by {changer.data ?? changedBy}
            </dd>
          </dl>
          <LiveStatus>{m.enabled ? (m.safeToRedeploy ? "Safe to redeploy the hub now." : "Waiting for running work to finish…") : ""}</LiveStatus>
          <p>
            While deployment mode is on, running jobs and tasks finish; queued and new training jobs wait in the queue, and new cohort queries and imaging imports
            are refused, until it is off. Everyone sees a banner. {m.enabled ? `This page checks again every ${REFRESH_ON_MS / 1000} s.` : ""}
          </p>
          <button type="button" className={`button ${m.enabled ? "button-primary" : "button-danger"}`} onClick={() => (setError(undefined), setConfirming(true))}>
            {m.enabled ? "Turn deployment mode off" : "Turn deployment mode on"}
          </button>
          <ErrorMessage error={error} />
        </>
      ) : mode.error ? null : (
        <Loading label="Reading deployment mode…" minHeight="12rem" />
      )}
      <ConfirmDialog
        open={confirming}
        title={on ? "Turn deployment mode off?" : "Turn deployment mode on?"}
        confirmLabel={on ? "Turn it off" : "Turn it on"}
        danger={!on}
        busy={busy}
        onConfirm={() => void toggle()}
        onCancel={() => setConfirming(false)}
      >
        {on ? (
          <p>Queued jobs start again and the hub accepts new cohort queries and imaging imports.</p>
        ) : (
          <>
            <p>
              New work pauses so the hub can be upgraded: running jobs and tasks finish, new ones wait (training jobs stay queued; cohort queries and imaging
              imports are refused until it is off).
            </p>
            <p>This page says when it is safe to redeploy: once nothing is running.</p>
          </>
        )}
        <ErrorMessage error={error} />
      </ConfirmDialog>
    </Panel>
  );
}

function SigningKeyPanel() {
  const admin = useClient(AdminService);
  const [revokePrevious, setRevokePrevious] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [result, setResult] = useState<RotateSigningKeyResponse>();

  const rotate = async () => {
    setBusy(true);
    setError(undefined);
    try {
      setResult(await admin.rotateSigningKey({ revokePrevious }));
      setConfirming(false);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Panel title="Access-token signing key">
      <p>
        The hub signs the short-lived access tokens of every session with one key, shared by all its replicas. Rotating it issues a new key at once. Tokens signed
        with the old key keep working until they expire, unless you refuse them now; sessions and API tokens are not affected either way, because a console gets a
        new access token with its session.
      </p>
      <label className="checkbox">
        <input type="checkbox" checked={revokePrevious} onChange={(e) => setRevokePrevious(e.target.checked)} />
        Refuse tokens signed with the old key now (for a leaked key)
      </label>
      <p className="hint">Everyone's next call then refreshes their access token first; nobody is signed out.</p>
      <div className="admin-actions admin-gap-top">
        <button type="button" className="button" onClick={() => (setError(undefined), setConfirming(true))}>
          Rotate signing key
        </button>
      </div>
      <LiveStatus>
        {result
          ? `Signing key rotated: new key ${result.keyId}; ${
              result.previousKeyId ? `tokens signed with ${result.previousKeyId} are accepted until they expire.` : "tokens signed with the previous key are refused from now on."
            }`
          : ""}
      </LiveStatus>
      <ConfirmDialog
        open={confirming}
        title="Rotate the signing key?"
        confirmLabel="Rotate signing key"
        danger={revokePrevious}
        busy={busy}
        onConfirm={() => void rotate()}
        onCancel={() => setConfirming(false)}
      >
        <p>
          {revokePrevious
            ? "A new key signs tokens from now on, and tokens signed with the old key are refused at once: every console refreshes its access token at its next call."
            : "A new key signs tokens from now on; tokens signed with the old key keep working until they expire."}
        </p>
        <ErrorMessage error={error} />
      </ConfirmDialog>
    </Panel>
  );
}
