import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { PersonRef } from "@flip/gen/flip/hub/v1/people_pb.js";

/** "2026-12-01 14:03" in the viewer's time zone; "—" when unset. */
export function formatTime(ts: Timestamp | undefined): string {
  if (!ts) return "—";
  const d = timestampDate(ts);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "3 min ago", "just now", "2 h ago", else the time. */
export function formatAgo(ts: Timestamp | undefined, now = Date.now()): string {
  if (!ts) return "never";
  const s = Math.round((now - timestampDate(ts).getTime()) / 1000);
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return formatTime(ts);
}

/** A person as people know them: the email, else the name, else the raw id. */
export function personLabel(p: PersonRef | undefined, fallback = "—"): string {
  return p?.email || p?.name || fallback;
}

export function formatCount(n: number | bigint): string {
  return Number(n).toLocaleString("en-GB");
}

export function formatBytes(n: number | bigint): string {
  const v = Number(n);
  if (v < 1024) return `${v} B`;
  if (v < 1024 ** 2) return `${(v / 1024).toFixed(1)} KiB`;
  if (v < 1024 ** 3) return `${(v / 1024 ** 2).toFixed(1)} MiB`;
  return `${(v / 1024 ** 3).toFixed(2)} GiB`;
}

/** A number for a chart axis or table: up to 4 significant digits. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}
