/**
 * What a cohort query may call. Everything here is a pure, built-in computation over values the query
 * already read: no file, network, session, lock, sequence, large-object or catalog access, and nothing
 * that can grow a value without bound (e.g. `repeat`). A function not listed is refused, so a new
 * PostgreSQL release cannot widen the surface behind our back.
 */

const AGGREGATES = [
  "count",
  "sum",
  "avg",
  "min",
  "max",
  "stddev",
  "stddev_samp",
  "stddev_pop",
  "variance",
  "var_samp",
  "var_pop",
  "percentile_cont",
  "percentile_disc",
  "mode",
  "string_agg",
  "array_agg",
  "bool_and",
  "bool_or",
  "every",
  "corr",
  "covar_pop",
  "covar_samp",
  "any_value",
];

const WINDOW_FUNCTIONS = ["row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value", "last_value", "nth_value"];

const MATH = [
  "abs",
  "round",
  "floor",
  "ceil",
  "ceiling",
  "trunc",
  "sign",
  "sqrt",
  "cbrt",
  "power",
  "pow",
  "exp",
  "ln",
  "log",
  "log10",
  "mod",
  "div",
  "width_bucket",
  "num_nulls",
  "num_nonnulls",
];

const STRINGS = [
  "lower",
  "upper",
  "initcap",
  "length",
  "char_length",
  "character_length",
  "octet_length",
  "substr",
  "substring",
  "left",
  "right",
  "strpos",
  "position",
  "replace",
  "translate",
  "reverse",
  "concat",
  "concat_ws",
  "btrim",
  "ltrim",
  "rtrim",
  "split_part",
  "starts_with",
  "regexp_replace",
  "regexp_like",
  "regexp_count",
  "format",
  "md5",
  "overlay",
];

const DATES = [
  "age",
  "date_part",
  "date_trunc",
  "date_bin",
  "extract",
  "make_date",
  "make_interval",
  "make_timestamp",
  "justify_days",
  "justify_hours",
  "justify_interval",
  "isfinite",
  "now",
  "timezone",
  "to_char",
  "to_number",
  "to_date",
  "to_timestamp",
];

const ARRAYS = ["array_length", "cardinality", "array_position", "array_to_string", "unnest", "generate_series"];

/** Internal helpers the parser itself inserts for `LIKE … ESCAPE` and `SIMILAR TO`. */
const PARSER_HELPERS = ["like_escape", "similar_to_escape"];

export const ALLOWED_FUNCTIONS: ReadonlySet<string> = new Set([...AGGREGATES, ...WINDOW_FUNCTIONS, ...MATH, ...STRINGS, ...DATES, ...ARRAYS, ...PARSER_HELPERS]);

/** Set-returning functions a query may use as a FROM item (e.g. a date grid). */
export const ALLOWED_FROM_FUNCTIONS: ReadonlySet<string> = new Set(["generate_series", "unnest"]);

/** Comparison, arithmetic, concatenation and pattern operators on built-in types. */
export const ALLOWED_OPERATORS: ReadonlySet<string> = new Set([
  "=",
  "<>",
  "<",
  ">",
  "<=",
  ">=",
  "+",
  "-",
  "*",
  "/",
  "%",
  "^",
  "||",
  "~~",
  "!~~",
  "~~*",
  "!~~*",
  "~",
  "~*",
  "!~",
  "!~*",
]);

/** Types a value may be cast to, by their catalog names (what the parser turns `integer`, `boolean`… into). */
export const ALLOWED_TYPES: ReadonlySet<string> = new Set([
  "int2",
  "int4",
  "int8",
  "float4",
  "float8",
  "numeric",
  "bool",
  "text",
  "varchar",
  "bpchar",
  "date",
  "time",
  "timetz",
  "timestamp",
  "timestamptz",
  "interval",
]);

/** CURRENT_DATE and friends; CURRENT_USER, CURRENT_ROLE, SESSION_USER, USER and CURRENT_CATALOG/SCHEMA are not offered. */
export const ALLOWED_SQL_VALUE_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  ["SVFOP_CURRENT_DATE", "CURRENT_DATE"],
  ["SVFOP_CURRENT_TIME", "CURRENT_TIME"],
  ["SVFOP_CURRENT_TIME_N", "CURRENT_TIME"],
  ["SVFOP_CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP"],
  ["SVFOP_CURRENT_TIMESTAMP_N", "CURRENT_TIMESTAMP"],
  ["SVFOP_LOCALTIME", "LOCALTIME"],
  ["SVFOP_LOCALTIME_N", "LOCALTIME"],
  ["SVFOP_LOCALTIMESTAMP", "LOCALTIMESTAMP"],
  ["SVFOP_LOCALTIMESTAMP_N", "LOCALTIMESTAMP"],
]);
