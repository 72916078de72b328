import test from "ava";
import { HealthRegistry, ServingStatus as Status } from "./health.js";

test("while a dependency is down every service is NOT_SERVING, and each gets its own status back when it returns", (t) => {
  const health = new HealthRegistry(["a.v1.A", "b.v1.B"]);
  health.set("b.v1.B", Status.NOT_SERVING);

  health.setDependency("postgres", false);
  t.deepEqual(health.entries(), [["", Status.NOT_SERVING], ["a.v1.A", Status.NOT_SERVING], ["b.v1.B", Status.NOT_SERVING]]);

  health.setDependency("postgres", true);
  t.deepEqual(health.entries(), [["", Status.SERVING], ["a.v1.A", Status.SERVING], ["b.v1.B", Status.NOT_SERVING]]);
});

test("a server shutting down stays NOT_SERVING when the database comes back", (t) => {
  const health = new HealthRegistry(["a.v1.A"]);
  health.setDependency("postgres", false);
  health.setAll(Status.NOT_SERVING);
  health.setDependency("postgres", true);
  t.is(health.get(""), Status.NOT_SERVING);
  t.is(health.get("a.v1.A"), Status.NOT_SERVING);
});

test("Watch sees the change a dependency makes", async (t) => {
  const health = new HealthRegistry(["a.v1.A"]);
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const watch = health.watch("a.v1.A", abort.signal);
  t.is((await watch.next()).value, Status.SERVING);
  const next = watch.next();
  health.setDependency("postgres", false);
  t.is((await next).value, Status.NOT_SERVING);
});
