// The playground in a real browser: Debian's chromium, driven by playwright-core, against real
// nodes. Two pages play a dice round to the end; an arena page keeps moving while its room's node
// drains, without a reload. Screenshots go to test-results/ (the CI's artifacts).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { root, startCluster, startNode } from "../harness.mjs";

const artifacts = join(root, "clients/typescript/test-results");
mkdirSync(artifacts, { recursive: true });

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
let context;
let profile;

before(async () => {
  profile = mkdtempSync(join(tmpdir(), "warren-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
    viewport: { width: 1280, height: 900 },
  });
});

after(async () => {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
});

/** A new page on `url`, whose console errors and page errors fail the test. */
async function open(url, errors) {
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(url);
  return page;
}

async function signIn(page, name) {
  await page.fill("#guest-name", name);
  await page.click("#guest-button");
  await page.waitForSelector("#lobby:not([hidden])");
}

describe("the playground in chromium", () => {
  let nodes = [];
  const pages = [];
  afterEach(async () => {
    for (const p of pages.splice(0)) await p.close();
    for (const n of nodes) await n.stop();
  });

  it("two pages play a dice round to the end", async (t) => {
    const node = await startNode();
    nodes = [node];
    const errors = [];
    const a = await open(`${node.url}/play`, errors);
    const b = await open(`${node.url}/play/`, errors);
    pages.push(a, b);
    await signIn(a, "Alice");
    await signIn(b, "Bob");
    await a.selectOption("#create-game", "dice");
    await a.fill("#create-seats", "2");
    await a.click("#create-button");
    await a.waitForSelector("#room:not([hidden])");
    const room = await a.textContent("#room-id");
    assert.equal(await a.textContent("#room-node"), "n1");

    // Bob finds the room in the lobby's list and joins it from there.
    await b.click("#refresh-button");
    await b.click(`#rooms tr:has-text("${room}") button`);
    await b.waitForSelector("#room:not([hidden])");
    assert.equal(await b.textContent("#room-id"), room);
    await a.waitForFunction(() => document.querySelectorAll("#room-players li").length === 2);

    await a.click("#ready-button");
    await b.click("#ready-button");
    // Each rolls when the page says it is their turn, until the round is over.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const over = await a.textContent("#dice-result");
      if (/Round 1 over/.test(over ?? "")) break;
      assert.ok(Date.now() < deadline, `the round did not end: ${over}`);
      for (const p of [a, b]) {
        if (await p.isEnabled("#roll-button")) await p.click("#roll-button");
      }
      await a.waitForTimeout(50);
    }
    await b.waitForFunction(() => /Round 1 over/.test(document.querySelector("#dice-result").textContent));
    const winners = await a.textContent("#dice-result");
    assert.match(winners, /(Alice|Bob)(, (Alice|Bob))? won/);
    assert.equal(await b.textContent("#dice-result"), winners);
    // The cluster view shows this node and its one room.
    await a.waitForSelector('#cluster-nodes tr[data-node="n1"]');
    assert.match(await a.textContent('#cluster-nodes tr[data-node="n1"]'), /your room/);
    await a.screenshot({ path: join(artifacts, "dice-alice.png") });
    await b.screenshot({ path: join(artifacts, "dice-bob.png") });
    assert.deepEqual(errors, []);
    t.diagnostic(`screenshots in ${artifacts}`);
  });

  it("an arena page keeps moving while its room's node drains, without a reload", async () => {
    nodes = await startCluster(3);
    const [n1, n2, n3] = nodes;
    const errors = [];
    // The page comes from n2 (which stays) and plays through n1 first: the room is on n1.
    const page = await open(`${n2.url}/play/?nodes=${n1.url},${n2.url},${n3.url}`, errors);
    pages.push(page);
    await page.evaluate(() => (window.loadedOnce = true));
    await signIn(page, "Runner");
    await page.selectOption("#create-game", "arena");
    await page.fill("#create-seats", "4");
    await page.click("#create-button");
    await page.waitForSelector("#arena:not([hidden])");
    assert.equal(await page.textContent("#room-node"), "n1");
    await page.check("#auto-move");
    const position = () =>
      page.evaluate(() => {
        const c = window.warren.client;
        const p = c.room?.state.players[c.player];
        return p ? { x: p.x, y: p.y, tick: c.room.tick, node: c.room.node } : null;
      });
    await page.waitForFunction(() => Number(document.querySelector("#arena-ack").textContent) > 3);
    const before = await position();
    await page.screenshot({ path: join(artifacts, "arena-before-drain.png") });

    await n1.drain();
    await page.waitForFunction(() => !["n1", "?"].includes(document.querySelector("#room-node").textContent), null, {
      timeout: 20_000,
    });
    const moved = await page.textContent("#room-node");
    const log = await page.textContent("#log");
    assert.match(log, new RegExp(`room .* moved: n1 → ${moved}`));
    assert.match(log, /connection closed \(4001\)/);
    // Still moving on the new node: the position changes and ticks go on.
    const after1 = await position();
    await page.waitForFunction(
      (p) => {
        const c = window.warren.client;
        const me = c.room?.state.players[c.player];
        return me && c.room.tick > p.tick + 10 && (me.x !== p.x || me.y !== p.y);
      },
      after1,
      { timeout: 20_000 },
    );
    const after2 = await position();
    assert.notDeepEqual([after2.x, after2.y], [before.x, before.y]);
    assert.equal(after2.node, moved);
    assert.equal(await page.evaluate(() => window.loadedOnce), true, "the page was not reloaded");
    assert.equal(await page.getAttribute("#status", "data-status"), "open");
    // The cluster view (from n2) shows n1 gone or leaving, and the room on its new node.
    await page.waitForSelector(`#cluster-nodes tr[data-node="${moved}"]:has-text("your room")`);
    await page.screenshot({ path: join(artifacts, "arena-after-drain.png") });
    assert.equal((await n1.exited).code, 0);
    assert.deepEqual(errors, []);
  });
});
