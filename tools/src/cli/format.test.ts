import test from "ava";
import { create } from "@bufbuild/protobuf";
import { PersonRefSchema } from "@flip/gen/flip/hub/v1/people_pb.js";
import { personLabel } from "./format.js";

const ID = "0387c8b9-5f4e-4b6a-9a41-2d3c1e0f7a11";

test("a person reads as their email, else their name, else the raw id or actor, with the bootstrap admin spelt out", (t) => {
  t.is(personLabel(create(PersonRefSchema, { userId: ID, email: "rita@uni.test", name: "Rita" }), `user:${ID}`), "rita@uni.test");
  t.is(personLabel(create(PersonRefSchema, { userId: ID, name: "Rita" }), ID), "Rita");
  t.is(personLabel(create(PersonRefSchema, { userId: ID }), ID), ID, "a user that is gone keeps their id");
  t.is(personLabel(undefined, `user:${ID}`), `user:${ID}`);
  t.is(personLabel(undefined, "bootstrap-admin"), "bootstrap admin");
  t.is(personLabel(undefined, "system"), "system");
  t.is(personLabel(undefined, "trust:north"), "trust:north");
});
