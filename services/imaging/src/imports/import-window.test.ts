import test from "ava";
import { ConfigError } from "@flip/shared/config/settings.js";
import { msUntilOpen, parseImportWindow, windowOpen } from "./import-window.js";

const at = (h: number, m = 0) => new Date(2026, 10, 30, h, m, 0);

test("a daytime window is open inside it and closed outside", (t) => {
  const w = parseImportWindow("09:00-17:30", "W");
  t.false(windowOpen(w, at(8, 59)));
  t.true(windowOpen(w, at(9, 0)));
  t.true(windowOpen(w, at(17, 29)));
  t.false(windowOpen(w, at(17, 30)));
  t.is(msUntilOpen(w, at(8, 0)), 60 * 60_000);
  t.is(msUntilOpen(w, at(12, 0)), 0);
});

test("a window over midnight is open late at night and early in the morning", (t) => {
  const w = parseImportWindow("20:00-06:00", "W");
  t.true(windowOpen(w, at(23, 0)));
  t.true(windowOpen(w, at(2, 0)));
  t.false(windowOpen(w, at(12, 0)));
  t.is(msUntilOpen(w, at(19, 0)), 60 * 60_000);
  t.true(windowOpen(undefined, at(12, 0)), "no window: always open");
});

test("a malformed window names the setting and shows the form", (t) => {
  for (const bad of ["9-17", "25:00-06:00", "10:00-10:00", "20:00"]) {
    const e = t.throws(() => parseImportWindow(bad, "FLIP_IMAGING_WINDOW"), { instanceOf: ConfigError });
    t.regex(e!.message, /FLIP_IMAGING_WINDOW/);
    t.regex(e!.message, /HH:MM-HH:MM/);
  }
});
