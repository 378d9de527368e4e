// Writes src/protocol.ts, the SDK's message types, from the protocol's JSON Schema
// (protocol/schema/v1.json, the one description of the wire contract that the Rust side is tested
// against too). `node scripts/gen-protocol.mjs --check` fails instead when the file is stale.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const schemaPath = join(here, "../../../protocol/schema/v1.json");
const outPath = join(here, "../src/protocol.ts");

const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
const defs = schema.$defs;

function doc(text, indent = "") {
  if (!text) return "";
  const lines = text.replace(/\*\//g, "* /").split("\n");
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`).join("\n")}\n${indent} */\n`;
}

function literal(v) {
  return JSON.stringify(v);
}

function props(s, indent) {
  const required = new Set(s.required ?? []);
  const lines = [];
  for (const [name, p] of Object.entries(s.properties ?? {})) {
    const key = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : literal(name);
    lines.push(doc(p.description, indent) + `${indent}${key}${required.has(name) ? "" : "?"}: ${type(p, indent)};`);
  }
  if (s.additionalProperties !== false && s.additionalProperties !== undefined && typeof s.additionalProperties === "object") {
    lines.push(`${indent}[key: string]: ${type(s.additionalProperties, indent)};`);
  } else if (s.additionalProperties === undefined && s.properties) {
    lines.push(`${indent}[key: string]: unknown;`);
  }
  return lines;
}

function type(s, indent = "") {
  if (s.$ref) return s.$ref.replace("#/$defs/", "");
  if ("const" in s) return literal(s.const);
  if (s.enum) return s.enum.map(literal).join(" | ");
  if (s.oneOf || s.anyOf) return (s.oneOf ?? s.anyOf).map((x) => type(x, indent)).join(" | ");
  switch (s.type) {
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array": {
      const item = type(s.items ?? {}, indent);
      if (s.minItems !== undefined && s.minItems === s.maxItems) {
        return `[${Array(s.minItems).fill(item).join(", ")}]`;
      }
      return /[|&]/.test(item) ? `(${item})[]` : `${item}[]`;
    }
    case "object": {
      if (!s.properties) {
        if (s.additionalProperties && typeof s.additionalProperties === "object") {
          return `Record<string, ${type(s.additionalProperties, indent)}>`;
        }
        return s.additionalProperties === false ? "Record<string, never>" : "Record<string, unknown>";
      }
      const inner = props(s, indent + "  ");
      return inner.length ? `{\n${inner.join("\n")}\n${indent}}` : "Record<string, never>";
    }
    default:
      return "unknown";
  }
}

let out = `// Generated from protocol/schema/v1.json by scripts/gen-protocol.mjs: do not edit.
// ${schema.title}. ${""}Clients must ignore message types and fields they do not know.

`;
for (const [name, s] of Object.entries(defs)) {
  out += doc(s.description);
  if (s.type === "object" && s.properties && Object.keys(s.properties).length) {
    out += `export interface ${name} {\n${props(s, "  ").join("\n")}\n}\n\n`;
  } else {
    out += `export type ${name} = ${type(s)};\n\n`;
  }
}

// What each request's `ok` carries, by the request's `type`.
const requests = defs.ClientMessage.oneOf.map((r) => r.$ref.replace("#/$defs/", ""));
out += "/** The fields of the `ok` that answers each request, by the request's `type`. */\n";
out += "export interface Replies {\n";
for (const r of requests) {
  out += `  ${defs[r].properties.type.const}: ${defs[r]["x-reply"]};\n`;
}
out += "}\n\n";
out += `/** Every \`code\` an \`error\` may carry. */\nexport const ERROR_CODES: readonly ErrorCode[] = ${JSON.stringify(defs.ErrorCode.enum)};\n`;

if (process.argv.includes("--check")) {
  const now = readFileSync(outPath, "utf8");
  if (now !== out) {
    console.error("src/protocol.ts is stale: run `npm run gen` (node scripts/gen-protocol.mjs) and commit it");
    process.exit(1);
  }
} else {
  writeFileSync(outPath, out);
}
