/**
 * Re-emits a cohort query's parse tree as SQL, enforcing the trust's rules on every node as it goes.
 *
 * Checking and emitting are one traversal on purpose: a node that is not checked cannot be emitted, and a
 * node type, field or function this file does not know is refused rather than passed through. What runs
 * against OMOP is this output, never the researcher's text. Unqualified OMOP tables are pinned to
 * `omop` in the tree itself, so validate.ts can prove the output parses back to exactly that tree.
 *
 * Every compound expression is parenthesised, which makes operator precedence a non-issue; parentheses
 * around an expression produce no parse-tree node, so they do not disturb that proof.
 */
import { scanSync } from "libpg-query";
import type {
  A_ArrayExpr,
  A_Const,
  A_Expr,
  Alias,
  BooleanTest,
  BoolExpr,
  CaseExpr,
  CaseWhen,
  CoalesceExpr,
  ColumnRef,
  CommonTableExpr,
  FuncCall,
  GroupingFunc,
  GroupingSet,
  JoinExpr,
  List,
  MinMaxExpr,
  Node,
  NullTest,
  RangeFunction,
  RangeSubselect,
  RangeVar,
  ResTarget,
  RowExpr,
  SelectStmt,
  SortBy,
  SQLValueFunction,
  SubLink,
  TypeCast,
  TypeName,
  WindowDef,
  WithClause,
} from "libpg-query";
import { ALLOWED_FROM_FUNCTIONS, ALLOWED_FUNCTIONS, ALLOWED_OPERATORS, ALLOWED_SQL_VALUE_FUNCTIONS, ALLOWED_TYPES } from "./allow-lists.js";
import { OMOP_TABLES } from "./omop-tables.js";
import { QueryRejectedError } from "./rejection.js";

const OMOP = "omop";

/** CTE names visible at a point of the query, innermost first. */
class Scope {
  constructor(
    private readonly names: ReadonlySet<string>,
    private readonly parent?: Scope,
  ) {}

  has(name: string): boolean {
    return this.names.has(name) || (this.parent?.has(name) ?? false);
  }

  with(names: Iterable<string>): Scope {
    return new Scope(new Set(names), this);
  }
}

export interface EmittedQuery {
  sql: string;
  /** OMOP tables the query reads, qualified (`omop.person`), sorted. */
  tables: string[];
}

/**
 * Emits a validated top-level SELECT; mutates `stmt` to pin unqualified OMOP tables to `omop`. `sql` is the
 * text it was parsed from, for positions in rejection messages.
 */
export function emitCohortSelect(stmt: SelectStmt, source = ""): EmittedQuery {
  const emitter = new Emitter(source);
  const sql = emitter.select(stmt, new Scope(new Set()));
  return { sql, tables: [...emitter.tables].sort() };
}

// Bits of WindowDef.frameOptions (PostgreSQL's FRAMEOPTION_* in nodes/parsenodes.h).
const FRAME = {
  NONDEFAULT: 0x1,
  RANGE: 0x2,
  ROWS: 0x4,
  GROUPS: 0x8,
  BETWEEN: 0x10,
  START_UNBOUNDED_PRECEDING: 0x20,
  END_UNBOUNDED_PRECEDING: 0x40,
  START_UNBOUNDED_FOLLOWING: 0x80,
  END_UNBOUNDED_FOLLOWING: 0x100,
  START_CURRENT_ROW: 0x200,
  END_CURRENT_ROW: 0x400,
  START_OFFSET_PRECEDING: 0x800,
  END_OFFSET_PRECEDING: 0x1000,
  START_OFFSET_FOLLOWING: 0x2000,
  END_OFFSET_FOLLOWING: 0x4000,
  EXCLUDE_CURRENT_ROW: 0x8000,
  EXCLUDE_GROUP: 0x10000,
  EXCLUDE_TIES: 0x20000,
} as const;

type Spelling = Readonly<Record<string, string>>;
const SET_OPERATIONS: Spelling = { SETOP_UNION: "UNION", SETOP_INTERSECT: "INTERSECT", SETOP_EXCEPT: "EXCEPT" };
const MATERIALIZED: Spelling = { CTEMaterializeAlways: " MATERIALIZED", CTEMaterializeNever: " NOT MATERIALIZED" };
const JOIN_TYPES: Spelling = { JOIN_INNER: "INNER", JOIN_LEFT: "LEFT", JOIN_FULL: "FULL", JOIN_RIGHT: "RIGHT" };
const SORT_DIRECTIONS: Spelling = { SORTBY_ASC: " ASC", SORTBY_DESC: " DESC" };
const SORT_NULLS: Spelling = { SORTBY_NULLS_FIRST: " NULLS FIRST", SORTBY_NULLS_LAST: " NULLS LAST" };
const BOOLEAN_TESTS: Spelling = {
  IS_TRUE: "IS TRUE",
  IS_NOT_TRUE: "IS NOT TRUE",
  IS_FALSE: "IS FALSE",
  IS_NOT_FALSE: "IS NOT FALSE",
  IS_UNKNOWN: "IS UNKNOWN",
  IS_NOT_UNKNOWN: "IS NOT UNKNOWN",
};

/** Names researchers know for constructs this validator does not accept. */
const CONSTRUCT_NAMES: Spelling = {
  ParamRef: "query parameters ($1)",
  CollateClause: "COLLATE",
  A_Indirection: "array subscripts and field selection",
  RangeTableSample: "TABLESAMPLE",
  RangeTableFunc: "XMLTABLE",
  JsonTable: "JSON_TABLE",
  XmlExpr: "XML functions",
  XmlSerialize: "XMLSERIALIZE",
  NamedArgExpr: "named function arguments",
  SetToDefault: "DEFAULT",
  CurrentOfExpr: "WHERE CURRENT OF",
  MergeSupportFunc: "MERGE_ACTION()",
  JsonObjectConstructor: "JSON_OBJECT",
  JsonArrayConstructor: "JSON_ARRAY",
  JsonIsPredicate: "IS JSON",
  JsonFuncExpr: "SQL/JSON query functions",
  JsonParseExpr: "JSON()",
  JsonScalarExpr: "JSON_SCALAR",
  JsonSerializeExpr: "JSON_SERIALIZE",
  JsonObjectAgg: "JSON_OBJECTAGG",
  JsonArrayAgg: "JSON_ARRAYAGG",
  JsonArrayQueryConstructor: "JSON_ARRAY(subquery)",
};

function unsupported(what: string): QueryRejectedError {
  return new QueryRejectedError("unsupported_syntax", `${what} is not supported in cohort queries`);
}

/** The single key of a parse-tree node and its body. */
function unwrap(node: Node | undefined): [string, unknown] {
  const entries = Object.entries(node ?? {});
  if (entries.length !== 1) throw unsupported("an empty expression");
  return entries[0]!;
}

function strings(nodes: Node[] | undefined): string[] {
  return (nodes ?? []).map((n) => {
    const [kind, body] = unwrap(n);
    if (kind !== "String") throw unsupported(`a ${kind} in a name`);
    return (body as { sval?: string }).sval ?? "";
  });
}

const SIMPLE_IDENT = /^[a-z_][a-z0-9_$]*$/;

/** Quotes an identifier unless it is a plain lower-case name that is not a keyword. */
function ident(name: string): string {
  if (SIMPLE_IDENT.test(name)) {
    const tokens = scanSync(name).tokens;
    if (tokens.length === 1 && tokens[0]!.keywordKind === 0) return name;
  }
  return `"${name.replaceAll('"', '""')}"`;
}

function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** A value fixed by the query text alone (literals, casts and operators over them), so it cannot vary by record. */
function isConstant(node: Node | undefined): boolean {
  const [kind, body] = Object.entries(node ?? {})[0] ?? ["", undefined];
  switch (kind) {
    case "A_Const":
      return true;
    case "TypeCast":
      return isConstant((body as TypeCast).arg);
    case "A_Expr": {
      const e = body as A_Expr;
      return e.kind === "AEXPR_OP" && (e.lexpr === undefined || isConstant(e.lexpr)) && isConstant(e.rexpr);
    }
    case "A_ArrayExpr":
      return ((body as A_ArrayExpr).elements ?? []).every(isConstant);
    default:
      return false;
  }
}

/** A number literal other than zero (possibly negated or cast): a divisor that can never be zero. */
function isNonZeroNumber(node: Node | undefined): boolean {
  const [kind, body] = Object.entries(node ?? {})[0] ?? ["", undefined];
  if (kind === "TypeCast") return isNonZeroNumber((body as TypeCast).arg);
  if (kind === "A_Expr") {
    const e = body as A_Expr;
    return e.kind === "AEXPR_OP" && e.lexpr === undefined && isNonZeroNumber(e.rexpr);
  }
  if (kind !== "A_Const") return false;
  const c = body as A_Const;
  if (c.ival) return (c.ival.ival ?? 0) !== 0;
  if (c.fval) return Number(c.fval.fval ?? "0") !== 0;
  return false;
}

/** NULLIF(x, 0): the usual guard that turns a zero divisor into NULL. */
function isNullIfZero(node: Node | undefined): boolean {
  const [kind, body] = Object.entries(node ?? {})[0] ?? ["", undefined];
  if (kind !== "A_Expr") return false;
  const e = body as A_Expr;
  const [rkind, r] = Object.entries(e.rexpr ?? {})[0] ?? ["", undefined];
  return e.kind === "AEXPR_NULLIF" && rkind === "A_Const" && !isNonZeroNumber(e.rexpr) && ((r as A_Const).ival !== undefined || (r as A_Const).fval !== undefined);
}

/**
 * Functions that raise an error for some argument values (ln(0), sqrt(-1), to_date('x', …), a zero
 * step…), with the arguments that must therefore be fixed by the query text: `all`, or their positions.
 * An error reached only for some records would tell whether such a record exists.
 */
const RAISES_ON_SOME_INPUTS: ReadonlyMap<string, "all" | readonly number[]> = new Map<string, "all" | readonly number[]>([
  ["sqrt", "all"],
  ["ln", "all"],
  ["log", "all"],
  ["log10", "all"],
  ["exp", "all"],
  ["power", "all"],
  ["pow", "all"],
  ["mod", "all"],
  ["div", "all"],
  ["width_bucket", "all"],
  ["to_date", "all"],
  ["to_timestamp", "all"],
  ["to_number", "all"],
  ["make_date", "all"],
  ["make_timestamp", "all"],
  ["make_interval", "all"],
  ["generate_series", "all"],
  ["ntile", [0]],
  ["nth_value", [1]],
  ["percentile_cont", [0]],
  ["percentile_disc", [0]],
  ["split_part", [2]],
  ["substr", [2]],
  ["substring", [1, 2]],
  ["overlay", [2, 3]],
  ["regexp_replace", [1, 3]],
  ["regexp_like", [1, 2]],
  ["regexp_count", [1, 2, 3]],
  ["date_trunc", [0]],
  ["date_part", [0]],
  ["extract", [0]],
  ["date_bin", [0]],
  ["timezone", [0]],
  ["format", [0]],
]);

/** Pattern operators whose right side is compiled as a regular expression or LIKE pattern and can be invalid. */
const PATTERN_OPERATORS: ReadonlySet<string> = new Set(["~", "~*", "!~", "!~*", "~~", "!~~", "~~*", "!~~*"]);

class Emitter {
  readonly tables = new Set<string>();

  constructor(private readonly source: string) {}

  /** A data_dependent_error rejection naming the construct and where it is, as a 1-based character position. */
  private dataDependent(what: string, fix: string, location: number | undefined): QueryRejectedError {
    const at = location !== undefined && location >= 0 ? ` (at character ${Buffer.from(this.source).subarray(0, location).toString().length + 1})` : "";
    return new QueryRejectedError(
      "data_dependent_error",
      `${what} can fail for some records, and whether it fails would reveal them${at}; ${fix}`,
    );
  }

  select(s: SelectStmt, scope: Scope): string {
    if (s.intoClause) throw new QueryRejectedError("select_only", "SELECT INTO creates a table; cohort queries may only read (drop the INTO clause)");
    if (s.lockingClause?.length) throw new QueryRejectedError("select_only", "FOR UPDATE/SHARE locks rows; cohort queries may only read (drop the locking clause)");
    const parts: string[] = [];
    let inner = scope;
    if (s.withClause) {
      const [text, withScope] = this.withClause(s.withClause, scope);
      parts.push(text);
      inner = withScope;
    }
    if (s.op && s.op !== "SETOP_NONE") {
      const op = SET_OPERATIONS[s.op];
      if (!op || !s.larg || !s.rarg) throw unsupported(`set operation ${s.op}`);
      parts.push(`(${this.select(s.larg, inner)}) ${op}${s.all ? " ALL" : ""} (${this.select(s.rarg, inner)})`);
    } else if (s.valuesLists) {
      parts.push(`VALUES ${s.valuesLists.map((row) => `(${this.exprs(this.listItems(row), inner)})`).join(", ")}`);
    } else {
      parts.push(this.simpleSelect(s, inner));
    }
    if (s.sortClause?.length) parts.push(`ORDER BY ${this.sortList(s.sortClause, inner)}`);
    parts.push(...this.limit(s));
    return parts.join(" ");
  }

  private simpleSelect(s: SelectStmt, scope: Scope): string {
    let text = "SELECT";
    if (s.distinctClause?.length) {
      const plain = s.distinctClause.length === 1 && Object.keys(s.distinctClause[0]!).length === 0;
      text += plain ? " DISTINCT" : ` DISTINCT ON (${this.exprs(s.distinctClause, scope)})`;
    }
    if (s.targetList?.length) text += ` ${s.targetList.map((t) => this.target(t, scope)).join(", ")}`;
    if (s.fromClause?.length) text += ` FROM ${s.fromClause.map((f) => this.fromItem(f, scope)).join(", ")}`;
    if (s.whereClause) text += ` WHERE ${this.expr(s.whereClause, scope)}`;
    if (s.groupClause?.length) text += ` GROUP BY ${s.groupDistinct ? "DISTINCT " : ""}${s.groupClause.map((g) => this.groupItem(g, scope)).join(", ")}`;
    if (s.havingClause) text += ` HAVING ${this.expr(s.havingClause, scope)}`;
    if (s.windowClause?.length) {
      text += ` WINDOW ${s.windowClause
        .map((w) => {
          const [kind, body] = unwrap(w);
          if (kind !== "WindowDef") throw unsupported(kind);
          const def = body as WindowDef;
          return `${ident(def.name ?? "")} AS (${this.windowSpec(def, scope)})`;
        })
        .join(", ")}`;
    }
    return text;
  }

  /** LIMIT and OFFSET take integer literals only: an expression there could hide a subquery or a function. */
  private limit(s: SelectStmt): string[] {
    const count = s.limitCount ? this.limitValue(s.limitCount, "LIMIT", true) : undefined;
    const offset = s.limitOffset ? this.limitValue(s.limitOffset, "OFFSET", false) : undefined;
    if (s.limitOption === "LIMIT_OPTION_WITH_TIES") {
      return [...(offset !== undefined ? [`OFFSET ${offset} ROWS`] : []), `FETCH FIRST ${count ?? "1"} ROWS WITH TIES`];
    }
    return [...(count !== undefined ? [`LIMIT ${count}`] : []), ...(offset !== undefined ? [`OFFSET ${offset}`] : [])];
  }

  private limitValue(node: Node, clause: string, allowAll: boolean): string {
    const [kind, body] = unwrap(node);
    const c = body as A_Const;
    if (kind === "A_Const" && c.isnull && allowAll) return "ALL";
    if (kind === "A_Const" && c.ival && (c.ival.ival ?? 0) >= 0) return String(c.ival.ival ?? 0);
    throw new QueryRejectedError("literal_limit", `${clause} must be a non-negative integer literal, e.g. ${clause} 100`);
  }

  private withClause(w: WithClause, scope: Scope): [string, Scope] {
    const ctes = (w.ctes ?? []).map((n) => {
      const [kind, body] = unwrap(n);
      if (kind !== "CommonTableExpr") throw unsupported(kind);
      return body as CommonTableExpr;
    });
    const names = ctes.map((c) => c.ctename ?? "");
    const all = scope.with(names);
    const texts = ctes.map((cte, i) => {
      if (cte.search_clause || cte.cycle_clause) throw unsupported("SEARCH/CYCLE in a recursive CTE");
      // A recursive WITH lets every CTE see all of them; otherwise each sees only those before it.
      const visible = w.recursive ? all : scope.with(names.slice(0, i));
      const [kind, body] = unwrap(cte.ctequery);
      if (kind !== "SelectStmt") throw new QueryRejectedError("select_only", `CTE ${cte.ctename} must be a SELECT`);
      const cols = cte.aliascolnames?.length ? `(${strings(cte.aliascolnames).map(ident).join(", ")})` : "";
      const materialized = MATERIALIZED[cte.ctematerialized ?? ""] ?? "";
      return `${ident(cte.ctename ?? "")}${cols} AS${materialized} (${this.select(body as SelectStmt, visible)})`;
    });
    return [`WITH ${w.recursive ? "RECURSIVE " : ""}${texts.join(", ")}`, all];
  }

  private target(node: Node, scope: Scope): string {
    const [kind, body] = unwrap(node);
    if (kind !== "ResTarget") throw unsupported(kind);
    const t = body as ResTarget;
    if (t.indirection?.length) throw unsupported("a target with subscripts");
    if (!t.val) throw unsupported("an empty select-list item");
    return t.name !== undefined ? `${this.expr(t.val, scope)} AS ${ident(t.name)}` : this.expr(t.val, scope);
  }

  private fromItem(node: Node, scope: Scope): string {
    const [kind, body] = unwrap(node);
    switch (kind) {
      case "RangeVar":
        return this.rangeVar(body as RangeVar, scope);
      case "JoinExpr":
        return this.join(body as JoinExpr, scope);
      case "RangeSubselect": {
        const r = body as RangeSubselect;
        const [subKind, sub] = unwrap(r.subquery);
        if (subKind !== "SelectStmt") throw unsupported(subKind);
        return `${r.lateral ? "LATERAL " : ""}(${this.select(sub as SelectStmt, scope)})${this.alias(r.alias)}`;
      }
      case "RangeFunction":
        return this.rangeFunction(body as RangeFunction, scope);
      default:
        throw unsupported(CONSTRUCT_NAMES[kind] ?? `${kind} in FROM`);
    }
  }

  /** Pins every table to `omop`: a CTE name in scope stays as written, an OMOP table name is qualified. */
  private rangeVar(r: RangeVar, scope: Scope): string {
    const rel = r.relname ?? "";
    const written = [r.catalogname, r.schemaname, rel].filter((p) => p !== undefined).join(".");
    if (r.catalogname !== undefined) {
      throw new QueryRejectedError("omop_schema_only", `table ${written} names another database; only tables in schema omop may be queried`);
    }
    if (r.schemaname !== undefined && r.schemaname !== OMOP) {
      throw new QueryRejectedError("omop_schema_only", `table ${written} is outside schema omop; only tables in schema omop may be queried`);
    }
    let name: string;
    if (r.schemaname === undefined && scope.has(rel)) {
      name = ident(rel);
    } else {
      if (!OMOP_TABLES.has(rel)) {
        throw new QueryRejectedError("omop_schema_only", `table ${written} is not an OMOP CDM table; query OMOP tables such as omop.person or omop.condition_occurrence`);
      }
      r.schemaname = OMOP;
      this.tables.add(`${OMOP}.${rel}`);
      name = `${OMOP}.${ident(rel)}`;
    }
    return `${r.inh === false ? "ONLY " : ""}${name}${this.alias(r.alias)}`;
  }

  private join(j: JoinExpr, scope: Scope): string {
    if (!j.larg || !j.rarg) throw unsupported("an incomplete join");
    const type = JOIN_TYPES[j.jointype ?? ""];
    if (!type) throw unsupported(`join type ${j.jointype}`);
    const left = this.fromItem(j.larg, scope);
    const right = this.fromItem(j.rarg, scope);
    let text: string;
    if (j.isNatural) text = `${left} NATURAL ${type} JOIN ${right}`;
    else if (j.usingClause?.length) {
      const alias = j.join_using_alias ? ` AS ${ident(j.join_using_alias.aliasname ?? "")}` : "";
      text = `${left} ${type} JOIN ${right} USING (${strings(j.usingClause).map(ident).join(", ")})${alias}`;
    } else if (j.quals) text = `${left} ${type} JOIN ${right} ON ${this.expr(j.quals, scope)}`;
    else if (type === "INNER") text = `${left} CROSS JOIN ${right}`;
    else throw unsupported(`${type} JOIN without a condition`);
    return `(${text})${this.alias(j.alias)}`;
  }

  private rangeFunction(r: RangeFunction, scope: Scope): string {
    const items = (r.functions ?? []).flatMap((f) => this.listItems(f));
    // Each item is [call, column definitions]; an absent definition list is an empty node.
    const calls = items.filter((n) => Object.keys(n).length > 0 && unwrap(n)[0] === "FuncCall").map((n) => unwrap(n)[1] as FuncCall);
    for (const call of calls) {
      const names = strings(call.funcname);
      if (!ALLOWED_FROM_FUNCTIONS.has(names.at(-1) ?? "") || names.length > 2 || (names.length === 2 && names[0] !== "pg_catalog")) {
        throw new QueryRejectedError("function_not_allowed", `function ${names.join(".")} may not be used in FROM; allowed: ${[...ALLOWED_FROM_FUNCTIONS].join(", ")}`);
      }
    }
    const hasColdefs = items.length > 1 && Object.keys(items[1]!).length > 0;
    if (r.is_rowsfrom || r.coldeflist?.length || calls.length !== 1 || hasColdefs) throw unsupported("ROWS FROM and column definition lists");
    return `${r.lateral ? "LATERAL " : ""}${this.funcCall(calls[0]!, scope)}${r.ordinality ? " WITH ORDINALITY" : ""}${this.alias(r.alias)}`;
  }

  private alias(a: Alias | undefined): string {
    if (!a) return "";
    const cols = a.colnames?.length ? `(${strings(a.colnames).map(ident).join(", ")})` : "";
    return ` AS ${ident(a.aliasname ?? "")}${cols}`;
  }

  private groupItem(node: Node, scope: Scope): string {
    const [kind, body] = unwrap(node);
    if (kind !== "GroupingSet") return this.expr(node, scope);
    const g = body as GroupingSet;
    const content = () => (g.content ?? []).map((c) => this.groupItem(c, scope)).join(", ");
    switch (g.kind) {
      case "GROUPING_SET_EMPTY":
        return "()";
      case "GROUPING_SET_ROLLUP":
        return `ROLLUP (${content()})`;
      case "GROUPING_SET_CUBE":
        return `CUBE (${content()})`;
      case "GROUPING_SET_SETS":
        return `GROUPING SETS (${content()})`;
      default:
        throw unsupported(`grouping set ${g.kind}`);
    }
  }

  private sortList(items: Node[], scope: Scope): string {
    return items
      .map((n) => {
        const [kind, body] = unwrap(n);
        if (kind !== "SortBy") throw unsupported(kind);
        const s = body as SortBy;
        if (s.useOp?.length || s.sortby_dir === "SORTBY_USING") throw unsupported("ORDER BY … USING");
        const dir = SORT_DIRECTIONS[s.sortby_dir ?? ""] ?? "";
        const nulls = SORT_NULLS[s.sortby_nulls ?? ""] ?? "";
        return `${this.expr(s.node, scope)}${dir}${nulls}`;
      })
      .join(", ");
  }

  private windowSpec(w: WindowDef, scope: Scope): string {
    const parts: string[] = [];
    if (w.refname !== undefined) parts.push(ident(w.refname));
    if (w.partitionClause?.length) parts.push(`PARTITION BY ${this.exprs(w.partitionClause, scope)}`);
    if (w.orderClause?.length) parts.push(`ORDER BY ${this.sortList(w.orderClause, scope)}`);
    const frame = this.frame(w, scope);
    if (frame) parts.push(frame);
    return parts.join(" ");
  }

  private frame(w: WindowDef, scope: Scope): string | undefined {
    const o = w.frameOptions ?? 0;
    if (!(o & FRAME.NONDEFAULT)) return undefined;
    const mode = o & FRAME.ROWS ? "ROWS" : o & FRAME.GROUPS ? "GROUPS" : "RANGE";
    const bound = (unboundedPreceding: number, unboundedFollowing: number, current: number, offPreceding: number, offFollowing: number, offset: Node | undefined) => {
      if (o & unboundedPreceding) return "UNBOUNDED PRECEDING";
      if (o & unboundedFollowing) return "UNBOUNDED FOLLOWING";
      if (o & current) return "CURRENT ROW";
      if (o & offPreceding) return `${this.expr(offset, scope)} PRECEDING`;
      if (o & offFollowing) return `${this.expr(offset, scope)} FOLLOWING`;
      throw unsupported("this window frame");
    };
    const start = bound(FRAME.START_UNBOUNDED_PRECEDING, FRAME.START_UNBOUNDED_FOLLOWING, FRAME.START_CURRENT_ROW, FRAME.START_OFFSET_PRECEDING, FRAME.START_OFFSET_FOLLOWING, w.startOffset);
    let text = `${mode} ${start}`;
    if (o & FRAME.BETWEEN) {
      const end = bound(FRAME.END_UNBOUNDED_PRECEDING, FRAME.END_UNBOUNDED_FOLLOWING, FRAME.END_CURRENT_ROW, FRAME.END_OFFSET_PRECEDING, FRAME.END_OFFSET_FOLLOWING, w.endOffset);
      text = `${mode} BETWEEN ${start} AND ${end}`;
    }
    if (o & FRAME.EXCLUDE_CURRENT_ROW) text += " EXCLUDE CURRENT ROW";
    if (o & FRAME.EXCLUDE_GROUP) text += " EXCLUDE GROUP";
    if (o & FRAME.EXCLUDE_TIES) text += " EXCLUDE TIES";
    return text;
  }

  private listItems(node: Node | undefined): Node[] {
    const [kind, body] = unwrap(node);
    if (kind !== "List") throw unsupported(kind);
    return (body as List).items ?? [];
  }

  private exprs(nodes: Node[], scope: Scope): string {
    return nodes.map((n) => this.expr(n, scope)).join(", ");
  }

  expr(node: Node | undefined, scope: Scope): string {
    const [kind, body] = unwrap(node);
    switch (kind) {
      case "ColumnRef":
        return this.columnRef(body as ColumnRef);
      case "A_Const":
        return this.constant(body as A_Const);
      case "A_Expr":
        return this.aExpr(body as A_Expr, scope);
      case "BoolExpr": {
        const b = body as BoolExpr;
        const args = (b.args ?? []).map((a) => this.expr(a, scope));
        if (b.boolop === "NOT_EXPR") return `(NOT ${args[0]})`;
        return `(${args.join(b.boolop === "AND_EXPR" ? " AND " : " OR ")})`;
      }
      case "FuncCall":
        return this.funcCall(body as FuncCall, scope);
      case "TypeCast": {
        const c = body as TypeCast;
        return `CAST(${this.expr(c.arg, scope)} AS ${this.typeName(c.typeName, scope)})`;
      }
      case "SubLink":
        return this.subLink(body as SubLink, scope);
      case "CaseExpr": {
        const c = body as CaseExpr;
        const whens = (c.args ?? []).map((w) => {
          const [k, wb] = unwrap(w);
          if (k !== "CaseWhen") throw unsupported(k);
          const cw = wb as CaseWhen;
          return `WHEN ${this.expr(cw.expr, scope)} THEN ${this.expr(cw.result, scope)}`;
        });
        const arg = c.arg ? ` ${this.expr(c.arg, scope)}` : "";
        const otherwise = c.defresult ? ` ELSE ${this.expr(c.defresult, scope)}` : "";
        return `CASE${arg} ${whens.join(" ")}${otherwise} END`;
      }
      case "CoalesceExpr":
        return `COALESCE(${this.exprs((body as CoalesceExpr).args ?? [], scope)})`;
      case "MinMaxExpr": {
        const m = body as MinMaxExpr;
        return `${m.op === "IS_LEAST" ? "LEAST" : "GREATEST"}(${this.exprs(m.args ?? [], scope)})`;
      }
      case "NullTest": {
        const n = body as NullTest;
        return `(${this.expr(n.arg, scope)} ${n.nulltesttype === "IS_NOT_NULL" ? "IS NOT NULL" : "IS NULL"})`;
      }
      case "BooleanTest": {
        const t = body as BooleanTest;
        const test = BOOLEAN_TESTS[t.booltesttype ?? ""];
        if (!test) throw unsupported(`boolean test ${t.booltesttype}`);
        return `(${this.expr(t.arg, scope)} ${test})`;
      }
      case "A_ArrayExpr":
        return `ARRAY[${this.exprs((body as A_ArrayExpr).elements ?? [], scope)}]`;
      case "RowExpr": {
        // Explicit ROW(...) and bare (a, b) differ in meaning inside GROUPING SETS, so keep the spelling.
        const r = body as RowExpr;
        const args = this.exprs(r.args ?? [], scope);
        return r.row_format === "COERCE_IMPLICIT_CAST" && (r.args?.length ?? 0) > 1 ? `(${args})` : `ROW(${args})`;
      }
      case "SQLValueFunction": {
        const f = body as SQLValueFunction;
        const name = ALLOWED_SQL_VALUE_FUNCTIONS.get(f.op ?? "");
        if (!name) throw new QueryRejectedError("function_not_allowed", `${(f.op ?? "").replace(/^SVFOP_/, "")} is not allowed in cohort queries`);
        return f.op?.endsWith("_N") ? `${name}(${f.typmod ?? 0})` : name;
      }
      case "GroupingFunc":
        return `GROUPING(${this.exprs((body as GroupingFunc).args ?? [], scope)})`;
      default:
        throw unsupported(CONSTRUCT_NAMES[kind] ?? `the ${kind} construct`);
    }
  }

  private columnRef(c: ColumnRef): string {
    const parts = (c.fields ?? []).map((f) => {
      const [kind, body] = unwrap(f);
      if (kind === "A_Star") return "*";
      if (kind !== "String") throw unsupported(kind);
      return (body as { sval?: string }).sval ?? "";
    });
    if (parts.length > 3) throw new QueryRejectedError("omop_schema_only", `column ${parts.join(".")} names another database`);
    if (parts.length === 3 && parts[0] !== OMOP) {
      throw new QueryRejectedError("omop_schema_only", `column ${parts.join(".")} is outside schema omop`);
    }
    return parts.map((p) => (p === "*" ? p : ident(p))).join(".");
  }

  private constant(c: A_Const): string {
    if (c.isnull) return "NULL";
    if (c.ival) {
      const v = c.ival.ival ?? 0;
      // Parenthesised so that e.g. CAST((-1) AS …) keeps the minus inside the literal.
      return v < 0 ? `(${v})` : String(v);
    }
    if (c.fval) {
      const v = c.fval.fval ?? "0";
      return v.startsWith("-") ? `(${v})` : v;
    }
    if (c.boolval) return c.boolval.boolval ? "TRUE" : "FALSE";
    if (c.sval) return literal(c.sval.sval ?? "");
    if (c.bsval) {
      const v = c.bsval.bsval ?? "";
      const prefix = v[0] === "x" ? "X" : "B";
      return `${prefix}${literal(v.slice(1))}`;
    }
    throw unsupported("this constant");
  }

  private operator(names: Node[] | undefined): string {
    const parts = strings(names);
    const op = parts.at(-1) ?? "";
    if (!ALLOWED_OPERATORS.has(op) || (parts.length === 2 && parts[0] !== "pg_catalog") || parts.length > 2) {
      throw new QueryRejectedError("operator_not_allowed", `operator ${parts.join(".")} is not allowed in cohort queries`);
    }
    return parts.length === 2 ? `OPERATOR(pg_catalog.${op})` : op;
  }

  private aExpr(e: A_Expr, scope: Scope): string {
    const left = () => this.expr(e.lexpr, scope);
    const right = () => this.expr(e.rexpr, scope);
    const rightList = () => this.exprs(this.listItems(e.rexpr), scope);
    switch (e.kind) {
      case "AEXPR_OP": {
        const op = this.operator(e.name);
        const text = e.lexpr ? `(${left()} ${op} ${right()})` : `(${op} ${right()})`;
        // After the operands, so that a forbidden function inside one is named as such.
        this.checkOperands(op, e);
        return text;
      }
      case "AEXPR_OP_ANY":
        return `(${left()} ${this.operator(e.name)} ANY (${right()}))`;
      case "AEXPR_OP_ALL":
        return `(${left()} ${this.operator(e.name)} ALL (${right()}))`;
      case "AEXPR_DISTINCT":
        return `(${left()} IS DISTINCT FROM ${right()})`;
      case "AEXPR_NOT_DISTINCT":
        return `(${left()} IS NOT DISTINCT FROM ${right()})`;
      case "AEXPR_NULLIF":
        return `NULLIF(${left()}, ${right()})`;
      case "AEXPR_IN":
        return `(${left()} ${this.operator(e.name) === "=" ? "IN" : "NOT IN"} (${rightList()}))`;
      case "AEXPR_LIKE":
      case "AEXPR_ILIKE": {
        const op = this.operator(e.name);
        const word = e.kind === "AEXPR_LIKE" ? "LIKE" : "ILIKE";
        const text = `(${left()} ${op.startsWith("!") ? "NOT " : ""}${word} ${right()})`;
        this.checkOperands(op, e);
        return text;
      }
      case "AEXPR_SIMILAR": {
        // The parser wraps the pattern in similar_to_escape(); emit the pattern so it is wrapped once again.
        const op = this.operator(e.name);
        const [kind, body] = unwrap(e.rexpr);
        const call = body as FuncCall;
        if (kind !== "FuncCall" || strings(call.funcname).join(".") !== "pg_catalog.similar_to_escape") throw unsupported("this SIMILAR TO form");
        if (!(call.args ?? []).every(isConstant)) throw this.dataDependent("a SIMILAR TO pattern read from the data", "use a pattern literal", e.location);
        const [pattern, escape] = (call.args ?? []).map((a) => this.expr(a, scope));
        return `(${left()} ${op === "!~" ? "NOT " : ""}SIMILAR TO ${pattern}${escape !== undefined ? ` ESCAPE ${escape}` : ""})`;
      }
      case "AEXPR_BETWEEN":
      case "AEXPR_NOT_BETWEEN":
      case "AEXPR_BETWEEN_SYM":
      case "AEXPR_NOT_BETWEEN_SYM": {
        const [lo, hi] = this.listItems(e.rexpr).map((n) => this.expr(n, scope));
        const not = e.kind.includes("NOT") ? "NOT " : "";
        const sym = e.kind.endsWith("SYM") ? "SYMMETRIC " : "";
        return `(${left()} ${not}BETWEEN ${sym}(${lo}) AND (${hi}))`;
      }
      default:
        throw unsupported(`the ${e.kind} expression`);
    }
  }

  /** Division, modulo and powers by a value read from the data, and patterns read from the data, can fail per record. */
  private checkOperands(op: string, e: A_Expr): void {
    if ((op === "/" || op === "%") && !isNonZeroNumber(e.rexpr) && !isNullIfZero(e.rexpr)) {
      throw this.dataDependent(`${op === "/" ? "division" : "modulo"} (${op}) by a value that can be zero`, "divide by a non-zero number literal, or by NULLIF(x, 0) so that a zero divisor gives NULL", e.location);
    }
    if (op === "^" && !(isConstant(e.lexpr) && isConstant(e.rexpr))) {
      throw this.dataDependent("a power (^) of values read from the data", "compute it outside the trust from the statistics, or use x * x", e.location);
    }
    if (PATTERN_OPERATORS.has(op) && !isConstant(e.rexpr)) {
      throw this.dataDependent(`a pattern (${op}) read from the data`, "use a pattern literal", e.location);
    }
  }

  private funcCall(f: FuncCall, scope: Scope): string {
    const names = strings(f.funcname);
    const name = names.at(-1) ?? "";
    if (!ALLOWED_FUNCTIONS.has(name) || names.length > 2 || (names.length === 2 && names[0] !== "pg_catalog")) {
      throw new QueryRejectedError("function_not_allowed", `function ${names.join(".")} is not allowed in cohort queries`);
    }
    if (f.func_variadic) throw unsupported("VARIADIC");
    const args = f.args ?? [];
    // Arguments first, so that a forbidden function inside one is named as such.
    const argTexts = args.map((a) => this.expr(a, scope));
    const fixed = RAISES_ON_SOME_INPUTS.get(name);
    if (fixed && !args.every((a, i) => (fixed !== "all" && !fixed.includes(i)) || isConstant(a))) {
      const which = fixed === "all" ? "its arguments" : `argument${fixed.length > 1 ? "s" : ""} ${fixed.map((i) => i + 1).join(", ")}`;
      throw this.dataDependent(`${name}() with a value read from the data`, `give ${which} as literals`, f.location);
    }
    let text: string;
    if (f.funcformat === "COERCE_SQL_SYNTAX") {
      text = sqlSyntaxCall(name, argTexts);
    } else {
      let inner = f.agg_star ? "*" : `${f.agg_distinct ? "DISTINCT " : ""}${argTexts.join(", ")}`;
      if (f.agg_order?.length && !f.agg_within_group) inner += ` ORDER BY ${this.sortList(f.agg_order, scope)}`;
      text = `${names.map(ident).join(".")}(${inner})`;
    }
    if (f.agg_within_group) text += ` WITHIN GROUP (ORDER BY ${this.sortList(f.agg_order ?? [], scope)})`;
    if (f.agg_filter) text += ` FILTER (WHERE ${this.expr(f.agg_filter, scope)})`;
    if (f.over) {
      const w = f.over;
      const bare = w.name !== undefined && w.refname === undefined && !w.partitionClause?.length && !w.orderClause?.length && !((w.frameOptions ?? 0) & FRAME.NONDEFAULT);
      text += bare ? ` OVER ${ident(w.name ?? "")}` : ` OVER (${this.windowSpec(w, scope)})`;
    }
    return text;
  }

  private subLink(s: SubLink, scope: Scope): string {
    const [kind, body] = unwrap(s.subselect);
    if (kind !== "SelectStmt") throw unsupported(kind);
    const sub = this.select(body as SelectStmt, scope);
    switch (s.subLinkType) {
      case "EXISTS_SUBLINK":
        return `EXISTS (${sub})`;
      case "EXPR_SUBLINK":
        return `(${sub})`;
      case "ARRAY_SUBLINK":
        return `ARRAY(${sub})`;
      case "ANY_SUBLINK":
        if (!s.operName?.length) return `(${this.expr(s.testexpr, scope)} IN (${sub}))`;
        return `(${this.expr(s.testexpr, scope)} ${this.operator(s.operName)} ANY (${sub}))`;
      case "ALL_SUBLINK":
        return `(${this.expr(s.testexpr, scope)} ${this.operator(s.operName)} ALL (${sub}))`;
      default:
        throw unsupported(`this kind of subquery (${s.subLinkType})`);
    }
  }

  private typeName(t: TypeName | undefined, scope: Scope): string {
    const names = strings(t?.names);
    const name = names.at(-1) ?? "";
    if (!ALLOWED_TYPES.has(name) || names.length > 2 || (names.length === 2 && names[0] !== "pg_catalog") || t?.setof || t?.pct_type) {
      throw new QueryRejectedError("type_not_allowed", `type ${names.join(".")} is not allowed in cohort queries; cast to e.g. integer, numeric, text, date or timestamp`);
    }
    const mods = t?.typmods?.length ? `(${this.exprs(t.typmods, scope)})` : "";
    const bounds = (t?.arrayBounds ?? [])
      .map((b) => {
        const [kind, body] = unwrap(b);
        const n = kind === "Integer" ? ((body as { ival?: number }).ival ?? 0) : -1;
        return n >= 0 ? `[${n}]` : "[]";
      })
      .join("");
    return `${names.map(ident).join(".")}${mods}${bounds}`;
  }
}

/** Functions the grammar spells with keywords (EXTRACT(x FROM y), TRIM(BOTH …), …), spelled the same way back. */
function sqlSyntaxCall(name: string, args: string[]): string {
  const [a, b, c, d] = args;
  switch (`${name}/${args.length}`) {
    case "extract/2":
      return `EXTRACT(${a} FROM ${b})`;
    case "timezone/2":
      return `(${b} AT TIME ZONE ${a})`;
    case "timezone/1":
      return `(${a} AT LOCAL)`;
    case "substring/2":
      return `SUBSTRING(${a} FROM ${b})`;
    case "substring/3":
      return `SUBSTRING(${a} FROM ${b} FOR ${c})`;
    case "position/2":
      return `POSITION(${b} IN ${a})`;
    case "overlay/3":
      return `OVERLAY(${a} PLACING ${b} FROM ${c})`;
    case "overlay/4":
      return `OVERLAY(${a} PLACING ${b} FROM ${c} FOR ${d})`;
    case "btrim/1":
    case "ltrim/1":
    case "rtrim/1":
      return `TRIM(${trimSide(name)} FROM ${a})`;
    case "btrim/2":
    case "ltrim/2":
    case "rtrim/2":
      return `TRIM(${trimSide(name)} ${b} FROM ${a})`;
    default:
      throw unsupported(`the SQL-syntax form of ${name}`);
  }
}

function trimSide(name: string): string {
  return name === "ltrim" ? "LEADING" : name === "rtrim" ? "TRAILING" : "BOTH";
}
