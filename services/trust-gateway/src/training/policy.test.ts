import test from "ava";
import { ConfigError } from "@flip/shared/config/settings.js";
import { readGatewayConfig } from "../config.js";
import { imageAllowed, parseImageAllowList, readTrainingPolicy } from "./policy.js";

test("the default policy allows the platform's own images, one CPU and keeps logs at the trust", (t) => {
  const p = readTrainingPolicy({});
  t.deepEqual(p.allowedImages, ["flip/*"]);
  t.is(p.maxGpus, undefined);
  t.is(p.cpus, 1);
  t.is(p.memoryMib, 4096);
  t.is(p.pidsLimit, 256);
  t.false(p.forwardLogs);
  t.is(p.forwardLogBytesPerRound, 64 * 1024);
  t.is(p.idleTimeoutMs, 7_200_000);
});

test("an operator's settings are read and checked", (t) => {
  const p = readTrainingPolicy({
    FLIP_TRAINING_IMAGES: "flip/*, hospital/train:3",
    FLIP_TRAINING_MAX_GPUS: "2",
    FLIP_TRAINING_MEMORY_MIB: "2048",
    FLIP_TRAINING_CPUS: "2.5",
    FLIP_TRAINING_FORWARD_LOGS: "on",
    FLIP_TRAINING_IDLE_TIMEOUT_S: "600",
  });
  t.deepEqual(p.allowedImages, ["flip/*", "hospital/train:3"]);
  t.is(p.maxGpus, 2);
  t.is(p.memoryMib, 2048);
  t.is(p.cpus, 2.5);
  t.true(p.forwardLogs);
  t.is(p.idleTimeoutMs, 600_000);
  t.throws(() => readTrainingPolicy({ FLIP_TRAINING_CPUS: "lots" }), { instanceOf: ConfigError, message: /FLIP_TRAINING_CPUS/ });
  t.throws(() => readTrainingPolicy({ FLIP_TRAINING_MAX_GPUS: "-1" }), { instanceOf: ConfigError });
  t.throws(() => parseImageAllowList("FLIP_TRAINING_IMAGES", "flip/*/x*"), { instanceOf: ConfigError });
});

test("an image is allowed by an exact reference or a prefix ending in *", (t) => {
  const allowed = ["flip/*", "hospital/train:3"];
  t.true(imageAllowed(allowed, "flip/train-numpy:1"));
  t.true(imageAllowed(allowed, "hospital/train:3"));
  t.false(imageAllowed(allowed, "hospital/train:4"));
  t.false(imageAllowed(allowed, "evil/flip/x"));
  t.false(imageAllowed([], "flip/train-numpy:1"));
});

test("a gateway takes training tasks only with FLIP_TRAINING=on, with the policy it reads", (t) => {
  const base = { FLIP_TRUST_CODE: "north", FLIP_TRUST_KEY: `flip_trust_${"0".repeat(16)}_${"a".repeat(43)}` };
  t.is(readGatewayConfig(base).training, undefined);
  t.is(readGatewayConfig({ ...base, FLIP_TRAINING_IMAGES: "x/*" }).training, undefined);
  const on = readGatewayConfig({ ...base, FLIP_TRAINING: "on", FLIP_TRAINING_IMAGES: "x/*" }).training!;
  t.deepEqual(on.policy.allowedImages, ["x/*"]);
});
