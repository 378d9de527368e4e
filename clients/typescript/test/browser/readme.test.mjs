// The browser example of README.md, as written there, in chromium: the page is served from its
// own origin (as a studio's game page would be), mints a guest token from the node, creates a dice
// room, and plays a round against a player connected through the SDK on Node.
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { chromium } from "playwright-core";
import { player, root, sleep, startNode, until } from "../harness.mjs";

const pkg = join(root, "clients/typescript");

/** The README's html example, pointed at `url`. */
function example(url) {
  const readme = readFileSync(join(pkg, "README.md"), "utf8");
  const block = /```html\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, "README.md has an html example");
  const lines = block[1].trimEnd().split("\n");
  assert.ok(lines.length <= 22, `the example is ${lines.length} lines`);
  assert.ok(block[1].includes("https://play.example.com"));
  return block[1].replace("https://play.example.com", url);
}

let context;
let profile;
before(async () => {
  profile = mkdtempSync(join(tmpdir(), "warren-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
});
after(async () => {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
});

it("the README's browser example plays a dice round", async () => {
  const node = await startNode();
  // The game page's own origin: the example, and the package's dist/src/ under /warren/.
  const site = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const file = /^\/warren\/([a-z]+\.js)$/.exec(path);
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(`<!doctype html>\n${example(node.url)}`);
    } else if (file) {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(readFileSync(join(pkg, "dist/src", file[1])));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => site.listen(0, "127.0.0.1", r));
  const errors = [];
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && !/status of 404/.test(m.text()) && errors.push(`console: ${m.text()}`));
  page.on("response", (r) => r.status() >= 400 && !r.url().endsWith("/favicon.ico") && errors.push(`${r.status()} ${r.url()}`));
  let bob;
  try {
    // The browser asks the page's origin for a favicon, which this site does not have.
    await page.goto(`http://127.0.0.1:${site.address().port}/`);
    const log = () => page.textContent("#log");
    await until("the page creates a room", async () => /^room \S+ on node n1/m.test(await log()));
    const id = /^room (\S+) on node/m.exec(await log())[1];

    bob = await player(node.url, "bob");
    const room = await bob.joinRoom(id);
    await until("the page sees bob", async () => /players: alice, bob/.test(await log()));
    await room.ready();
    // Each rolls in turn: bob through the SDK, alice by pressing "r" on her page.
    await until("the round is over", async () => {
      await room.send({ action: "roll" }).catch(() => {});
      await page.keyboard.press("r");
      await sleep(100); // well within the per-connection rate limit
      return /^winners: /m.test(await log());
    });
    const text = await log();
    assert.match(text, /^bob-\S+ rolled \d \+ \d$/m);
    assert.match(text, /^guest-\S+ rolled \d \+ \d$/m);
    assert.deepEqual(errors, []);
    assert.deepEqual(bob.violations, []);
  } finally {
    bob?.close();
    await page.close();
    site.close();
    await node.stop();
  }
});
