import { loadModule, parseSync } from "libpg-query";
await loadModule();
const strip = (k, v) => (k === "location" ? undefined : v);
for (const q of process.argv.slice(2)) { try { console.log(JSON.stringify(parseSync(q).stmts, strip)); } catch (e) { console.log("ERR", e.message, JSON.stringify(e.sqlDetails)); } }
