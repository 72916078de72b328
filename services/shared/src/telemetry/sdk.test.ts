import test from "ava";
import { OTLPTraceExporter as OtlpJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProtobufExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { ConfigError } from "../config/settings.js";
import { otlpTraceExporter } from "./sdk.js";

test("spans are exported as OTLP protobuf unless a protocol says otherwise", (t) => {
  t.true(otlpTraceExporter({}) instanceof OtlpProtobufExporter);
  t.true(otlpTraceExporter({ OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" }) instanceof OtlpProtobufExporter);
});

test("http/json exports OTLP as JSON; the traces-only setting wins over the general one", (t) => {
  t.true(otlpTraceExporter({ OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }) instanceof OtlpJsonExporter);
  t.true(otlpTraceExporter({ OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json" }) instanceof OtlpJsonExporter);
  t.true(otlpTraceExporter({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf" }) instanceof OtlpProtobufExporter);
});

test("a protocol FLIP cannot export with is refused, naming the setting and what it takes", (t) => {
  const e = t.throws(() => otlpTraceExporter({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc" }), { instanceOf: ConfigError });
  t.is(e?.message, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc" is not valid: expected one of http/protobuf, http/json');
});
