import { ConfigError } from "@flip/shared/config/settings.js";

/**
 * The daily time window in which imports may run (hospitals keep the PACS for clinical work by day).
 * Minutes after local midnight; a window that ends before it starts runs over midnight (20:00-06:00).
 */
export interface ImportWindow {
  startMinute: number;
  endMinute: number;
  /** As the operator wrote it, for messages. */
  text: string;
}

const DAY_MINUTES = 24 * 60;

/** Parses "HH:MM-HH:MM" (24-hour, local time); throws ConfigError naming the setting. */
export function parseImportWindow(raw: string, setting: string): ImportWindow {
  const m = /^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$/.exec(raw);
  const expected = 'a daily window "HH:MM-HH:MM" in local time, e.g. "20:00-06:00" (over midnight) or "09:00-17:00"';
  if (!m) throw new ConfigError(setting, expected, raw);
  const [h1, m1, h2, m2] = m.slice(1).map(Number) as [number, number, number, number];
  if (h1 > 23 || h2 > 23 || m1 > 59 || m2 > 59) throw new ConfigError(setting, expected, raw);
  const startMinute = h1 * 60 + m1;
  const endMinute = h2 * 60 + m2;
  if (startMinute === endMinute) throw new ConfigError(setting, `${expected}; start and end must differ (leave it unset to import at any time)`, raw);
  return { startMinute, endMinute, text: raw.trim() };
}

function minuteOfDay(now: Date): number {
  return now.getHours() * 60 + now.getMinutes() + now.getSeconds() / 60;
}

/** Whether imports may run at `now`; always without a window. */
export function windowOpen(window: ImportWindow | undefined, now: Date): boolean {
  if (!window) return true;
  const t = minuteOfDay(now);
  const { startMinute: s, endMinute: e } = window;
  return s < e ? t >= s && t < e : t >= s || t < e;
}

/** Milliseconds until the window next opens (0 when open now). */
export function msUntilOpen(window: ImportWindow | undefined, now: Date): number {
  if (windowOpen(window, now)) return 0;
  const t = minuteOfDay(now);
  const wait = (window!.startMinute - t + DAY_MINUTES) % DAY_MINUTES;
  return Math.max(1_000, Math.ceil(wait * 60_000));
}
