import { useState, type FormEvent } from "react";
import { HealthState, GpuSource, type HealthSnapshot } from "@flip/gen/flip/common/v1/common_pb.js";
import { LinkStatus, TrustService, type Trust } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { errorText, invalidField } from "../../api/errors.js";
import { useClient } from "../../session/session-context.js";
import { ConfirmDialog } from "../../ui/confirm.js";
import { DataTable, type Column } from "../../ui/data-table.js";
import { Field } from "../../ui/field.js";
import { formatAgo, formatBytes, formatTime } from "../../ui/format.js";
import { Badge, ErrorMessage, Loading, Page, Panel, type Tone } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";
import { PagerControls, usePager } from "../../ui/pager.js";
import { ShownOnceDialog } from "./shown-once-dialog.js";
import { useEvery, useNow } from "../../ui/use-every.js";
import "./admin.css";

/** How often the list is read again: a trust's heartbeat moves "last seen" and may change its health. */
const REFRESH_MS = 5_000;

const LINK: Record<LinkStatus, { tone: Tone; words: string }> = {
  [LinkStatus.UNSPECIFIED]: { tone: "neutral", words: "Unknown" },
  [LinkStatus.ONLINE]: { tone: "good", words: "Online" },
  [LinkStatus.OFFLINE]: { tone: "bad", words: "Offline" },
  [LinkStatus.NEVER_CONNECTED]: { tone: "neutral", words: "Never connected" },
};

const HEALTH: Record<HealthState, { tone: Tone; words: string }> = {
  [HealthState.UNSPECIFIED]: { tone: "neutral", words: "unknown" },
  [HealthState.HEALTHY]: { tone: "good", words: "healthy" },
  [HealthState.DEGRADED]: { tone: "warn", words: "degraded" },
  [HealthState.DOWN]: { tone: "bad", words: "down" },
  [HealthState.UNKNOWN]: { tone: "neutral", words: "unknown" },
};

const GPU_SOURCE: Record<GpuSource, string> = {
  [GpuSource.UNSPECIFIED]: "",
  [GpuSource.NVIDIA_SMI]: "found by nvidia-smi",
  [GpuSource.DECLARED]: "declared by the operator",
  [GpuSource.NONE]: "none found, none declared",
};

const MIB = 1024 ** 2;

/** The trust's API key, just issued: for the shown-once dialog. */
interface IssuedKey {
  trust: Trust;
  apiKey: string;
  registered: boolean;
}

/** What an admin is about to confirm for one trust. */
type Pending = { kind: "rotate" | "disable" | "enable"; trust: Trust };

/** Every registered trust (enabled or not), its link and health, its key, and registering new ones (Admin). */
export function TrustsPage() {
  const client = useClient(TrustService);
  const pager = usePager();
  const list = useLoad((signal) => client.listTrusts({ includeDisabled: true, page: { pageSize: 100, pageToken: pager.token } }, { signal }), [client, pager.token]);
  useEvery(REFRESH_MS, list.reload);
  const now = useNow(REFRESH_MS);
  const [registering, setRegistering] = useState(false);
  const [issued, setIssued] = useState<IssuedKey>();
  const [pending, setPending] = useState<Pending>();
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<unknown>();
  const [detailsOf, setDetailsOf] = useState<string>();

  const confirm = async () => {
    if (!pending) return;
    const { kind, trust } = pending;
    setBusy(true);
    setActionError(undefined);
    try {
      if (kind === "rotate") {
        const r = await client.rotateTrustKey({ trust: trust.id });
        setIssued({ trust: r.trust ?? trust, apiKey: r.apiKey, registered: false });
      } else if (kind === "disable") {
        await client.disableTrust({ trust: trust.id, reason: reason.trim() });
      } else {
        await client.enableTrust({ trust: trust.id });
      }
      setPending(undefined);
      list.reload();
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(false);
    }
  };

  const ask = (kind: Pending["kind"], trust: Trust) => {
    setActionError(undefined);
    setReason("");
    setPending({ kind, trust });
  };

  const columns: Column<Trust>[] = [
    { header: "Name", width: "12rem", cell: (t) => t.name },
    { header: "Code", width: "7rem", cell: (t) => <code>{t.code}</code> },
    { header: "Region", width: "5.5rem", cell: (t) => t.region || "—" },
    {
      header: "Link",
      width: "10.5rem",
      cell: (t) => (
        <div className="admin-stack">
          <Badge tone={LINK[t.linkStatus].tone}>{LINK[t.linkStatus].words}</Badge>
          <span className="admin-muted admin-last-seen" title={formatTime(t.lastSeenAt)}>
            {t.lastSeenAt ? `last seen ${formatAgo(t.lastSeenAt, now)}` : "never seen"}
          </span>
        </div>
      ),
    },
    { header: "Services", cell: (t) => <ServicesCell health={t.health} /> },
    { header: "GPUs", width: "9rem", cell: (t) => <GpusCell health={t.health} /> },
    {
      header: "State",
      width: "6.5rem",
      cell: (t) => (t.disabled ? <Badge tone="bad" title={`since ${formatTime(t.disabledAt)}`}>Disabled</Badge> : <Badge tone="good">Enabled</Badge>),
    },
    {
      header: "Actions",
      width: "17.5rem",
      cell: (t) => (
        <div className="admin-actions">
          <button
            type="button"
            className="button button-small"
            aria-expanded={detailsOf === t.id}
            aria-label={`Details of ${t.code}`}
            onClick={() => setDetailsOf((d) => (d === t.id ? undefined : t.id))}
          >
            Details
          </button>
          <button type="button" className="button button-small" aria-label={`Rotate key of ${t.code}`} onClick={() => ask("rotate", t)}>
            Rotate key
          </button>
          {t.disabled ? (
            <button type="button" className="button button-small" aria-label={`Enable ${t.code}`} onClick={() => ask("enable", t)}>
              Enable
            </button>
          ) : (
            <button type="button" className="button button-small" aria-label={`Disable ${t.code}`} onClick={() => ask("disable", t)}>
              Disable
            </button>
          )}
        </div>
      ),
    },
  ];

  const trusts = list.data?.trusts ?? [];
  const shown = trusts.find((t) => t.id === detailsOf);
  return (
    <Page
      title="Trusts"
      subtitle="The hospitals that take part: whether their gateway is linked, what it reports, and their API keys."
      actions={
        <button type="button" className="button button-primary" aria-expanded={registering} onClick={() => setRegistering((r) => !r)}>
          Register a trust
        </button>
      }
    >
      {registering ? (
        <RegisterTrustForm
          onCancel={() => setRegistering(false)}
          onRegistered={(trust, apiKey) => {
            setRegistering(false);
            setIssued({ trust, apiKey, registered: true });
            list.reload();
          }}
        />
      ) : null}
      <Panel title="Registered trusts">
        <ErrorMessage error={list.error} prefix="Could not list the trusts" />
        {list.data ? (
          <>
            <DataTable
              caption="Trusts"
              columns={columns}
              rows={trusts}
              rowKey={(t) => t.id}
              empty="No trust is registered yet: register one, then give its key to the trust's operator."
            />
            <PagerControls pager={pager} nextPageToken={list.data.page?.nextPageToken} label="Trusts" busy={list.loading} />
            <p className="hint">Read again every {REFRESH_MS / 1000} s. A trust is offline when its heartbeats stop.</p>
          </>
        ) : list.error ? null : (
          <Loading label="Loading trusts…" minHeight="10rem" />
        )}
      </Panel>
      {shown ? <TrustDetails trust={shown} now={now} onClose={() => setDetailsOf(undefined)} /> : null}

      <ConfirmDialog
        open={pending !== undefined}
        title={pending ? confirmTitle(pending) : ""}
        confirmLabel={pending?.kind === "rotate" ? "Rotate key" : pending?.kind === "disable" ? "Disable trust" : "Enable trust"}
        danger={pending?.kind !== "enable"}
        busy={busy}
        onConfirm={() => void confirm()}
        onCancel={() => setPending(undefined)}
      >
        {pending?.kind === "rotate" ? (
          <p>
            A new API key is issued and shown once. The current key stops working at once and the trust's open link is cut: the trust is offline
            until its operator installs the new key. Work for the trust waits meanwhile and is offered again when it links.
          </p>
        ) : pending?.kind === "disable" ? (
          <>
            <p>
              Its key is refused and its open link is closed: the trust takes no new cohort queries or training rounds until it is enabled again.
              The key is kept, so enabling the trust lets the same gateway back in.
            </p>
            <Field label="Reason (optional)" hint="Recorded in the audit log.">
              {(p) => <input {...p} value={reason} maxLength={500} onChange={(e) => setReason(e.target.value)} />}
            </Field>
          </>
        ) : pending?.kind === "enable" ? (
          <p>Its current key works again; its gateway links again by itself at its next retry.</p>
        ) : null}
        <ErrorMessage error={actionError} />
      </ConfirmDialog>

      <ShownOnceDialog
        title={issued ? `${issued.registered ? "API key for the new trust" : "New API key for"} ${issued.trust.name} (${issued.trust.code})` : ""}
        secretLabel={issued ? `API key (${issued.trust.code})` : "API key"}
        secret={issued?.apiKey}
        onClose={() => setIssued(undefined)}
      >
        {issued ? (
          <p>
            Give it to the trust's operator{issued.registered ? <> with the trust code <code>{issued.trust.code}</code></> : null}. In the trust kit
            (deploy/trust) they write it to <code>secrets/trust_key</code>
            {issued.registered ? (
              <>
                , set <code>FLIP_TRUST_CODE={issued.trust.code}</code>, and start the kit
              </>
            ) : (
              <>
                {" "}and restart the gateway (<code>docker-compose up -d --force-recreate gateway</code>)
              </>
            )}
            . A gateway run without the kit takes it in <code>FLIP_TRUST_KEY</code>. The trust shows as online here once its gateway links.
          </p>
        ) : null}
      </ShownOnceDialog>
    </Page>
  );
}

function confirmTitle({ kind, trust }: Pending): string {
  const name = `${trust.name} (${trust.code})`;
  if (kind === "rotate") return `Rotate the API key of ${name}?`;
  if (kind === "disable") return `Disable ${name}?`;
  return `Enable ${name}?`;
}

function ServicesCell({ health }: { health: HealthSnapshot | undefined }) {
  if (!health || health.services.length === 0) return <span className="admin-muted">not reported</span>;
  return (
    <ul className="admin-badges">
      {health.services.map((s) => (
        <li key={s.name}>
          <Badge tone={HEALTH[s.state].tone} title={s.detail || undefined}>
            {s.name} {HEALTH[s.state].words}
          </Badge>
        </li>
      ))}
    </ul>
  );
}

function GpusCell({ health }: { health: HealthSnapshot | undefined }) {
  if (!health) return <span className="admin-muted">not reported</span>;
  if (health.gpus.length === 0) return <span>none</span>;
  const names = [...new Set(health.gpus.map((g) => g.name))];
  return (
    <span title={GPU_SOURCE[health.gpuSource]}>
      {health.gpus.length} × {names.join(", ")}
    </span>
  );
}

/** One trust in full: its link (GetTrust), every service's probe and every GPU. */
function TrustDetails({ trust, now, onClose }: { trust: Trust; now: number; onClose: () => void }) {
  const client = useClient(TrustService);
  // Reloaded with the list (the `now` tick), so the link stays as current as the row above.
  const one = useLoad((signal) => client.getTrust({ trust: trust.id }, { signal }), [client, trust.id, now]);
  const t = one.data?.trust ?? trust;
  const h = t.health;
  const link = one.data?.trust?.link;
  return (
    <Panel
      title={`${t.name} (${t.code})`}
      id="trust-details"
      actions={
        <button type="button" className="button button-small" onClick={onClose}>
          Close details
        </button>
      }
    >
      <ErrorMessage error={one.error} />
      <div className="grid-2">
        <dl className="facts">
          <dt>Link</dt>
          <dd>
            {LINK[t.linkStatus].words}, last seen {formatAgo(t.lastSeenAt, now)}
          </dd>
          <dt>Gateway</dt>
          <dd>{link ? `${link.gatewayVersion || "version not reported"}${link.gateway ? ` (${link.gateway})` : ""}` : one.data ? "not linked" : "…"}</dd>
          <dt>Linked since</dt>
          <dd>{link ? `${formatTime(link.connectedAt)} on hub replica ${link.hubInstance}` : "—"}</dd>
          <dt>Key id</dt>
          <dd>
            <code>{t.keyId}</code>
          </dd>
          <dt>Registered</dt>
          <dd>{formatTime(t.createdAt)}</dd>
          {t.disabled ? (
            <>
              <dt>Disabled</dt>
              <dd>{formatTime(t.disabledAt)}</dd>
            </>
          ) : null}
          <dt>Health reported</dt>
          <dd>{h ? formatTime(h.takenAt) : "never"}</dd>
        </dl>
        <div>
          <h3>GPUs</h3>
          {h && h.gpus.length > 0 ? (
            <ul className="admin-list">
              {h.gpus.map((g) => (
                <li key={g.uuid || g.index}>
                  GPU {g.index}: {g.name},{" "}
                  {h.gpuSource === GpuSource.NVIDIA_SMI
                    ? `${formatBytes(Number(g.memoryUsedMib) * MIB)} of ${formatBytes(Number(g.memoryTotalMib) * MIB)} used, ${g.utilizationPercent}% busy`
                    : `${formatBytes(Number(g.memoryTotalMib) * MIB)}`}
                </li>
              ))}
            </ul>
          ) : (
            <p>None.</p>
          )}
          {h ? <p className="hint">Inventory: {GPU_SOURCE[h.gpuSource] || "source not reported"}.</p> : null}
        </div>
      </div>
      {link && link.refusedAttempts > 0 ? (
        <p className="error" role="alert">
          Another gateway of this trust tried to link {link.refusedAttempts} time(s), last {link.lastRefusedGateway || "unnamed"} at{" "}
          {formatTime(link.lastRefusedAt)}; it was refused. Stop whichever should not run.
        </p>
      ) : null}
      <h3>Services</h3>
      {h && h.services.length > 0 ? (
        <DataTable
          caption={`Services of ${t.code}`}
          rows={h.services}
          rowKey={(s) => s.name}
          empty=""
          columns={[
            { header: "Service", width: "10rem", cell: (s) => s.name },
            { header: "State", width: "8rem", cell: (s) => <Badge tone={HEALTH[s.state].tone}>{HEALTH[s.state].words}</Badge> },
            { header: "Detail", cell: (s) => s.detail || "—" },
            { header: "Probe", width: "6rem", numeric: true, cell: (s) => `${s.latencyMs.toFixed(1)} ms` },
            { header: "Checked", width: "9rem", cell: (s) => formatTime(s.checkedAt) },
          ]}
        />
      ) : (
        <p>The gateway has not reported its services.</p>
      )}
    </Panel>
  );
}

function RegisterTrustForm({ onRegistered, onCancel }: { onRegistered: (t: Trust, apiKey: string) => void; onCancel: () => void }) {
  const client = useClient(TrustService);
  const [name, setName] = useState("");
  const [code, setCode] = useState("");
  const [region, setRegion] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const field = invalidField(error);
  const errorAt = (name: string) => (field === name ? errorText(error) : undefined);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const r = await client.registerTrust({ name: name.trim(), code: code.trim(), region: region.trim() });
      if (r.trust) onRegistered(r.trust, r.apiKey);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Panel title="Register a trust">
      <form className="form" onSubmit={(e) => void submit(e)}>
        <Field label="Name" hint="As people know the hospital, e.g. Guy's and St Thomas'." error={errorAt("name")}>
          {(p) => <input {...p} required minLength={2} maxLength={120} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <div className="form-row">
          <Field
            label="Code"
            hint='2 to 32 lower-case letters, digits or hyphens, starting with a letter, e.g. "gstt". It cannot change later.'
            error={errorAt("code")}
          >
            {(p) => <input {...p} required pattern="[a-z][a-z0-9\-]{1,31}" value={code} onChange={(e) => setCode(e.target.value)} />}
          </Field>
          <Field label="Region (optional)" error={errorAt("region")}>
            {(p) => <input {...p} maxLength={64} value={region} onChange={(e) => setRegion(e.target.value)} />}
          </Field>
        </div>
        <p className="hint">Its API key is shown once, after registering.</p>
        {field ? null : <ErrorMessage error={error} />}
        <div className="form-row">
          <button type="submit" className="button button-primary" disabled={busy}>
            Register trust
          </button>
          <button type="button" className="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Panel>
  );
}
