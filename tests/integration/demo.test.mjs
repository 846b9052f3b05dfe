// The demo chat app (examples/chat, served by the gateways at /demo/ with WSGATE_DEMO=on) in a
// real browser: Debian's Chromium, headless, driven by playwright-core (no browser download).
// Two pages against a real local cluster: alice on gw-a (a desk-sized window), bob on gw-b
// (a phone-sized one). Both join chat:general, see each other in its presence, and a message
// from alice appears on bob's page. Then gw-a is SIGKILLed: alice's badge goes reconnecting ->
// resumed (her client fails over to gw-b and resumes the channel from its last seq), what bob
// said meanwhile reaches her once, and her next message reaches bob exactly once. Then the
// router's console (/console/, behind the API key) is opened: it asks for the key, lists the
// gateways, finds alice with her connection and channel, shows the channel's users, and
// disconnects her (4003): her page's badge goes closed. Each page's screenshot is written to
// WSGATE_SCREENSHOT_DIR (default <tmp>/wsgate-screenshots).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startCluster, buildDir } from './lib/cluster.mjs';
import { httpGet } from './lib/http.mjs';

const CHROMIUM = process.env.WSGATE_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.WSGATE_SCREENSHOT_DIR || path.join(os.tmpdir(), 'wsgate-screenshots');
const NAMESPACES = JSON.stringify({ '': {}, chat: { join_leave: true, history_size: 200 } });
const CHANNEL = 'chat:general';
const API_KEY = 'console-test-key';

// The log entries of the page's current channel whose text is exactly `text`.
const entries = (page, text) => page.locator('#log li .text', { hasText: text })
  .filter({ has: page.locator(`xpath=self::*[normalize-space(.)=${JSON.stringify(text)}]`) });
const badge = (page) => page.locator('#badge').getAttribute('data-state');

async function waitBadge(page, state, timeoutMs = 15000) {
  await page.locator(`#badge[data-state="${state}"]`).waitFor({ timeout: timeoutMs });
}

async function say(page, text) {
  await page.fill('#text', text);
  await page.click('#send-form button[type="submit"]');
}

describe('the demo chat app in a real browser', () => {
  let cluster;
  let browser;
  const pages = {};

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/install-deps test), or set WSGATE_CHROMIUM`);
    }
    cluster = await startCluster({
      auth: 'none',
      authFixed: true, // the demo signs in by name (auth none), also in a JWT run of the suite
      env: {
        router: { WSGATE_CHANNEL_NAMESPACES: NAMESPACES, WSGATE_API_KEY: API_KEY },
        gateway: { WSGATE_CHANNEL_NAMESPACES: NAMESPACES, WSGATE_DEMO: 'on',
          WSGATE_DEMO_DIR: path.join(buildDir, 'demo') },
      },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    fs.mkdirSync(SHOTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  it('serves the app, the client module with a JavaScript type, and nothing outside it', async () => {
    const g = cluster.gateways['gw-a'];
    const index = await httpGet(`${g.http}/demo/`);
    assert.equal(index.status, 200);
    assert.match(index.body, /<title>wsgate chat demo<\/title>/);
    const mod = await httpGet(`${g.http}/demo/client/wsgate-client.mjs`);
    assert.equal(mod.status, 200);
    assert.match(mod.headers.get('content-type'), /^text\/javascript/);
    assert.match(mod.body, /export class WsgateClient/);
    const redirect = await fetch(`${g.http}/demo`, { redirect: 'manual' });
    assert.equal(redirect.status, 301);
    assert.match(redirect.headers.get('location'), /\/demo\/$/);
    // (paths with .. are normalised away by any HTTP client; test_gw_static covers them)
    for (const bad of ['/demo/nothing.html', '/demo/.hidden.html', '/demo/app.sh']) {
      assert.equal((await httpGet(`${g.http}${bad}`)).status, 404, bad);
    }
  });

  it('two pages chat, see each other, and survive their gateway being killed', async () => {
    const a = cluster.gateways['gw-a'];
    const b = cluster.gateways['gw-b'];
    const open = async (name, home, other, viewport) => {
      const context = await browser.newContext({ viewport });
      const page = await context.newPage();
      page.on('pageerror', (err) => { page.errors = [...(page.errors ?? []), err.message]; });
      const q = new URLSearchParams({ name, autoconnect: '1', channels: CHANNEL,
        url: `${home.ws},${other.ws}` });
      await page.goto(`${home.http}/demo/?${q}`);
      pages[name] = page;
      return page;
    };
    const alice = await open('alice', a, b, { width: 1100, height: 760 });
    const bob = await open('bob', b, a, { width: 390, height: 844 }); // a phone
    await waitBadge(alice, 'open');
    await waitBadge(bob, 'open');
    // each page connects to the gateway that served it first (its url list starts with it)
    assert.match(await alice.locator('#badge').getAttribute('title'), /^node gw-a,/);
    assert.match(await bob.locator('#badge').getAttribute('title'), /^node gw-b,/);
    assert.equal(await alice.locator('#me').getAttribute('data-user'), 'alice');

    // Presence: each page lists both users in the channel.
    for (const page of [alice, bob]) {
      await page.locator('#presence li[data-user="alice"]').waitFor({ timeout: 10000 });
      await page.locator('#presence li[data-user="bob"]').waitFor({ timeout: 10000 });
    }

    await say(alice, 'hello from alice');
    await entries(bob, 'hello from alice').first().waitFor({ timeout: 10000 });
    assert.equal(await entries(bob, 'hello from alice').count(), 1);

    // gw-a dies without a word: alice's page fails over to gw-b. Bob speaks at once, while
    // she is (most likely) still away; whether she gets it on resume or live, she gets it once.
    await cluster.kill('gw-a');
    await say(bob, 'said while alice was away');
    // 'reconnecting' may last less than a poll: the page's own record of its states is read
    await alice.waitForFunction(() => window.wsgateDemo.states.includes('reconnecting'),
      null, { timeout: 15000 });
    await waitBadge(alice, 'resumed', 20000);
    const states = await alice.evaluate(() => window.wsgateDemo.states);
    const r = states.indexOf('reconnecting');
    assert.ok(r > 0 && states.indexOf('resumed') > r, `alice's badge went ${states.join(' -> ')}`);
    // what she missed arrives once (the channel resumed from her last seq), ...
    await entries(alice, 'said while alice was away').first().waitFor({ timeout: 10000 });
    // ... and her next message reaches bob exactly once
    await say(alice, 'back after the failover');
    await entries(bob, 'back after the failover').first().waitFor({ timeout: 10000 });
    await new Promise((res) => setTimeout(res, 1000)); // a duplicate would come within this
    assert.equal(await entries(bob, 'back after the failover').count(), 1);
    assert.equal(await entries(alice, 'said while alice was away').count(), 1);
    assert.equal(await entries(alice, 'hello from alice').count(), 1);
    assert.equal(await badge(bob), 'open');

    for (const [name, page] of Object.entries(pages)) {
      await page.screenshot({ path: path.join(SHOTS, `demo-${name}.png`), fullPage: true });
      assert.deepEqual(page.errors ?? [], [], `${name}'s page threw`);
    }
  });

  it('the console asks for the key, shows the cluster, finds alice and disconnects her', async () => {
    const router = cluster.routers.router.http;
    const index = await httpGet(`${router}/console/`);
    assert.equal(index.status, 200);
    assert.match(index.body, /<title>wsgate console<\/title>/);
    const redirect = await fetch(`${router}/console`, { redirect: 'manual' });
    assert.equal(redirect.status, 301);
    assert.match(redirect.headers.get('location'), /\/console\/$/);
    assert.equal((await httpGet(`${router}/api/info`)).status, 401, 'the data needs the key');
    for (const bad of ['/console/nothing.html', '/console/.hidden.js', '/consoles/']) {
      assert.equal((await httpGet(`${router}${bad}`)).status, 404, bad);
    }

    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    page.on('pageerror', (err) => { page.errors = [...(page.errors ?? []), err.message]; });
    await page.goto(`${router}/console/`);
    await page.locator('#key-form').waitFor({ state: 'visible', timeout: 10000 });
    await page.fill('#key', 'not-the-key');
    await page.click('#key-form button[type="submit"]');
    await page.locator('#key-why', { hasText: 'refused' }).waitFor({ timeout: 10000 });
    await page.fill('#key', API_KEY);
    await page.click('#key-form button[type="submit"]');

    // the gateway alice and bob are on now, serving, with its connection count
    const gwB = page.locator('#nodes tr[data-node="gw-b"]');
    await gwB.waitFor({ timeout: 10000 });
    assert.match(await gwB.locator('.state').innerText(), /serving/);
    await page.waitForFunction(() => Number(document.querySelector('#nodes tr[data-node="gw-b"] .connections')?.textContent) >= 2,
      null, { timeout: 10000 });
    await page.locator('#routers tr[data-router]').first().waitFor();
    // rates need two heartbeats with counters
    await page.waitForFunction(() => document.getElementById('t-sent').textContent !== '–',
      null, { timeout: 15000 });

    await page.fill('#channel', CHANNEL);
    await page.click('#channel-form button[type="submit"]');
    for (const u of ['alice', 'bob']) {
      await page.locator(`#channel-result li[data-user="${u}"]`).waitFor({ timeout: 10000 });
    }

    await page.fill('#user', 'alice');
    await page.click('#user-form button[type="submit"]');
    const found = page.locator('#user-result .result[data-user="alice"][data-online="true"]');
    await found.waitFor({ timeout: 10000 });
    const row = found.locator('tr[data-node="gw-b"]');
    assert.equal(await row.count(), 1, 'alice has one connection, on gw-b');
    assert.match(await row.innerText(), new RegExp(CHANNEL));
    await page.screenshot({ path: path.join(SHOTS, 'console.png'), fullPage: true });

    await found.locator('button.disconnect').click();
    // (gw-a's connection of hers may still be in the registry: gw-a died without a word, and
    // the router forgets it after WSGATE_NODE_TIMEOUT; the close goes to both)
    const note = page.locator('#user-result .note[data-closed]');
    await note.waitFor({ timeout: 10000 });
    assert.ok(Number(await note.getAttribute('data-closed')) >= 1, await note.innerText());
    await page.locator('#user-result .result[data-user="alice"][data-online="false"]')
      .waitFor({ timeout: 10000 });
    // 4003: final for the client, which does not come back
    await waitBadge(pages.alice, 'closed', 10000);
    await new Promise((res) => setTimeout(res, 2500)); // a reconnect would show in a refresh
    assert.equal(await page.locator('#user-result .result[data-online="false"]').count(), 1);
    assert.equal(await badge(pages.bob), 'open');
    assert.deepEqual(page.errors ?? [], [], 'the console threw');
  });
});
