// Test harness: real `warren` processes on loopback (ports the kernel picks, read from each
// node's ready line), tokens signed like the node's, and a check of every frame against the
// protocol's JSON Schema (protocol/schema/v1.json).
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, readFileSync, mkdirSync, createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, "../../..");
export const SECRET = "sdk-test-secret-0123456789";

/**
 * The node binary: `SDK_TEST_BIN_DIR` (default: the workspace's target/debug, which
 * `cargo test --workspace --features test-hooks` builds) holds `warren` and `warren-test-node`.
 */
export function binary(name = "warren") {
  const dir = process.env.SDK_TEST_BIN_DIR ?? join(root, "target/debug");
  const path = join(dir, name);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run \`cargo build --features test-hooks --bins\` first (or set SDK_TEST_BIN_DIR)`);
  }
  return path;
}

const running = new Set();
process.on("exit", () => {
  for (const n of running) n.child.kill("SIGKILL");
});

/** A running node: its id, HTTP URL, cluster address, and the process. */
export class Node {
  constructor(id, child, logPath) {
    this.id = id;
    this.child = child;
    this.logPath = logPath;
    this.url = "";
    this.cluster = "";
    this.exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
  }

  logs() {
    return existsSync(this.logPath) ? readFileSync(this.logPath, "utf8") : "";
  }

  kill(signal = "SIGKILL") {
    this.child.kill(signal);
  }

  async drain() {
    const res = await fetch(`${this.url}/v1/admin/drain`, { method: "POST" });
    if (res.status !== 202) throw new Error(`drain: ${res.status}`);
  }

  async stop() {
    running.delete(this);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
  }
}

let started = 0;

/** Starts a node; `seeds` are cluster addresses of running nodes. */
export async function startNode({ id = `n${started + 1}`, seeds = [], bin = "warren", env = {} } = {}) {
  const dir = join(tmpdir(), `warren-sdk-tests-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const logPath = join(dir, `${id}-${started++}.log`);
  const log = createWriteStream(logPath);
  const child = spawn(binary(bin), [], {
    env: {
      PATH: process.env.PATH,
      WARREN_NODE__ID: id,
      WARREN_HTTP__LISTEN: "127.0.0.1:0",
      WARREN_CLUSTER__LISTEN: "127.0.0.1:0",
      WARREN_CLUSTER__SEEDS: seeds.join(","),
      WARREN_CLUSTER__COOKIE: "sdk-test-cookie-0123456789",
      WARREN_CLUSTER__FAILURE_TIMEOUT_MS: "1000",
      WARREN_AUTH__JWT_SECRET: SECRET,
      WARREN_HTTP__WORKERS: "1",
      WARREN_LOG__LEVEL: "warn,warren=info",
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const node = new Node(id, child, logPath);
  running.add(node);
  let text = "";
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} did not start: ${text}`)), 20_000);
    child.on("exit", () => reject(new Error(`${id} exited: ${text}`)));
    child.stderr.on("data", (chunk) => {
      log.write(chunk);
      if (node.url) return;
      text += chunk.toString();
      const line = text.split("\n").find((l) => l.includes("warren node ready"));
      if (!line) return;
      const field = (name) => line.split(/\s+/).find((w) => w.startsWith(name))?.slice(name.length);
      node.url = `http://${field("http=")}`;
      node.cluster = field("cluster=");
      clearTimeout(timer);
      resolve();
    });
  });
  await until(`${id} ready`, async () => (await fetch(`${node.url}/readyz`)).status === 200);
  return node;
}

/** `n` nodes that see each other, all ready. */
export async function startCluster(n, options = {}) {
  const first = await startNode({ ...options, id: "n1" });
  const nodes = [first];
  for (let i = 2; i <= n; i++) nodes.push(await startNode({ ...options, id: `n${i}`, seeds: [first.cluster] }));
  await until("every node sees every node ready", async () => {
    for (const node of nodes) {
      const v = await (await fetch(`${node.url}/v1/cluster`)).json();
      if (v.nodes.filter((m) => m.state === "ready").length !== n) return false;
    }
    return true;
  });
  return nodes;
}

/** Polls `check` until it holds, for at most `ms`. */
export async function until(what, check, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function b64url(s) {
  return Buffer.from(s).toString("base64url");
}

/** An HS256 JWT for `player`, signed with the nodes' secret. */
export function token(player, claims = {}) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ sub: player, exp: Math.floor(Date.now() / 1000) + 3600, ...claims }));
  const sig = createHmac("sha256", SECRET).update(`${header}.${body}`).digest("base64url");
  return `${header}.${body}.${sig}`;
}

let seq = 0;
/** A player id no other test uses. */
export function playerId(name) {
  return `${name}-${process.pid}-${++seq}`;
}

const schema = JSON.parse(readFileSync(join(root, "protocol/schema/v1.json"), "utf8"));
const ajv = new Ajv2020({ allErrors: true });
ajv.addKeyword("x-reply");
ajv.addSchema(schema, "v1");
/** The validator of one definition of the protocol's schema. */
export function validator(def) {
  return ajv.getSchema(`v1#/$defs/${def}`);
}
const serverMessage = validator("ServerMessage");
const clientMessage = validator("ClientMessage");

/**
 * Checks every frame `client` receives and sends against the schema. Returns the list of
 * violations, which a test asserts empty at its end (`assert.deepEqual(violations, [])`).
 */
export function checkFrames(client) {
  const violations = [];
  client.on("message", (m) => {
    if (!serverMessage(m)) violations.push({ received: m, errors: ajv.errorsText(serverMessage.errors) });
  });
  client.on("sent", (m) => {
    if (!clientMessage(m)) violations.push({ sent: m, errors: ajv.errorsText(clientMessage.errors) });
  });
  return violations;
}

/**
 * A player connected through the SDK (built: `npm run build`), every frame checked against the
 * schema from the first one on: `client.violations` must stay empty.
 */
export async function player(url, name, options = {}) {
  const { Client } = await import("../dist/src/index.js");
  const id = playerId(name);
  const client = new Client({ url, token: token(id, { name }), ...options });
  client.violations = checkFrames(client);
  await client.open();
  return client;
}
