// Fails when the committed build in dist/ (which the node embeds for /play, and npm publishes)
// is not what `npm run build` makes of the sources now.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = mkdtempSync(join(tmpdir(), "warren-sdk-dist-"));
const tsc = join(pkg, "node_modules/typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", join(pkg, "tsconfig.json"), "--outDir", out], { stdio: "inherit" });

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}
const fresh = files(out).map((f) => relative(out, f)).sort();
const committed = files(join(pkg, "dist")).map((f) => relative(join(pkg, "dist"), f)).sort();
const stale = [];
if (JSON.stringify(fresh) !== JSON.stringify(committed)) stale.push(`files differ: ${fresh} vs ${committed}`);
for (const f of fresh) {
  let now = "";
  try {
    now = readFileSync(join(pkg, "dist", f), "utf8");
  } catch {
    // missing: reported above
  }
  if (readFileSync(join(out, f), "utf8") !== now) stale.push(f);
}
rmSync(out, { recursive: true, force: true });
if (stale.length) {
  console.error(`dist/ is stale (${stale.join(", ")}): run \`npm run build\` in clients/typescript and commit dist/`);
  process.exit(1);
}
console.log("dist/ matches the sources");
