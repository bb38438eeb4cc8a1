// test-dashboard.mjs: the dashboard (GET /, SPEC §10) in a real browser
//
// Debian's Chromium, headless, driven by playwright-core (no browser of its
// own is downloaded), against the real pubsubd ($PUBSUBD) on 127.0.0.1:0.
// Checks: the page loads with no console error, no failed request and no
// request leaving the host; a topic created over REST appears; publishing
// over /ws moves the counters and the chart; creating, publishing, watching
// and deleting from the page work, and a WebSocket subscriber sees the
// page's message; with an api-key the page asks for it, refuses a wrong one
// and then works. It takes the screenshots docs/dashboard-1280.png and
// docs/dashboard-390.png.
//
//   cd tests/dashboard && npm ci      # once: playwright-core and ws
//   meson test -C build --suite browser      # pictures in build/tests/dashboard/
//   PUBSUBD=build/src/pubsubd node tests/dashboard/test-dashboard.mjs
//                                            # pictures in docs/
//
// $DASHBOARD_LOAD_SECONDS (default 20) is how long traffic runs before the
// pictures are taken.
// Exit status 77 (skipped) without /usr/bin/chromium (or $CHROMIUM) or
// without node_modules. SPDX-License-Identifier: MIT

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCE_ROOT = resolve(HERE, '..', '..');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PUBSUBD = process.env.PUBSUBD;
// Where the pictures go: --screenshots DIR (meson: the build directory),
// else docs/ of the source tree, the ones the README shows.
const screenshotsArg = process.argv.indexOf('--screenshots');
const SCREENSHOT_DIR = screenshotsArg > 0 ? resolve(process.argv[screenshotsArg + 1])
  : join(SOURCE_ROOT, 'docs');
const API_KEY = 'dashboard-Key_9';

function skip(reason) {
  console.log(`SKIP: ${reason}`);
  process.exit(77);
}

if (!existsSync(CHROMIUM))
  skip(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
if (!existsSync(join(HERE, 'node_modules', 'playwright-core')) ||
    !existsSync(join(HERE, 'node_modules', 'ws')))
  skip(`${join(HERE, 'node_modules')} is missing: run npm ci in tests/dashboard`);
if (!PUBSUBD)
  throw new Error('set PUBSUBD to the pubsubd binary (meson test does)');

const { chromium } = await import('playwright-core');
const { default: WebSocket } = await import('ws');

let step = 0;
function ok(text) {
  console.log(`ok ${++step} - ${text}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(condition, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value)
      return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

// ---- the daemon -------------------------------------------------------------

// No daemon outlives the test, whatever ends it (meson's timeout sends
// SIGTERM; Playwright closes the browser on it by itself).
const children = new Set();
process.on('exit', () => {
  for (const child of children)
    child.kill('SIGKILL');
});
process.on('SIGTERM', () => process.exit(1));
process.on('SIGINT', () => process.exit(1));

class Server {
  static async start(extraArgs = []) {
    const server = new Server();
    await server.spawn(extraArgs);
    return server;
  }

  async spawn(extraArgs) {
    this.configHome = mkdtempSync(join(tmpdir(), 'pubsub-dashboard-'));
    const env = { ...process.env, XDG_CONFIG_HOME: this.configHome };
    for (const name of Object.keys(env))
      if (name === 'ADDR' || name === 'API_KEY' || name.startsWith('PUBSUB_'))
        delete env[name];
    // As the C tests do: $PUBSUBD_WRAPPER (e.g. valgrind) goes in front.
    const wrapper = (process.env.PUBSUBD_WRAPPER || '').split(' ').filter(Boolean);
    const argv = [...wrapper, PUBSUBD, '--listen', '127.0.0.1:0', '--bus', 'none', ...extraArgs];
    this.log = '';
    this.child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(this.child);
    this.child.on('exit', () => children.delete(this.child));
    this.exited = new Promise((resolveExit) => this.child.on('exit', (code, signal) =>
      resolveExit({ code, signal })));
    const onData = (chunk) => { this.log += chunk.toString(); };
    this.child.stdout.on('data', onData);
    this.child.stderr.on('data', onData);
    const match = await waitFor(() => /Listening on http:\/\/([^/\s]+)\//.exec(this.log),
                                'pubsubd to listen', 30000);
    this.base = `http://${match[1]}`;
    this.wsUrl = `ws://${match[1]}/ws`;
  }

  async request(method, path, body, apiKey) {
    const headers = {};
    if (apiKey)
      headers['X-API-Key'] = apiKey;
    if (body !== undefined)
      headers['Content-Type'] = 'application/json';
    const response = await fetch(this.base + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, json: await response.json() };
  }

  async createTopic(name, apiKey) {
    const { status } = await this.request('POST', '/topics', { name }, apiKey);
    assert.equal(status, 201, `POST /topics ${name}`);
  }

  async topicNames(apiKey) {
    const { status, json } = await this.request('GET', '/topics', undefined, apiKey);
    assert.equal(status, 200);
    return json.topics.map((t) => t.name);
  }

  // SIGTERM; a graceful exit is status 0 (under valgrind: no errors).
  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null)
      this.child.kill('SIGTERM');
    const { code, signal } = await this.exited;
    rmSync(this.configHome, { recursive: true, force: true });
    assert.equal(signal, null, `pubsubd was killed by ${signal}\n${this.log}`);
    assert.equal(code, 0, `pubsubd exited with ${code}\n${this.log}`);
  }
}

// After a failure, a daemon that does not stop cleanly is reported, not
// thrown: the first failure is the one to see.
async function stopServer(server, failure) {
  try {
    await server.stop();
  } catch (error) {
    if (!failure)
      throw error;
    console.log(`# and then: ${error.message}`);
  }
}

// ---- a WebSocket client (the protocol of SPEC §2) -----------------------------

class Client {
  static async open(url) {
    const client = new Client();
    client.frames = [];
    client.waiters = [];
    client.counter = 0;
    client.ws = new WebSocket(url);
    client.ws.on('message', (data) => client.receive(JSON.parse(data.toString())));
    await new Promise((resolveOpen, reject) => {
      client.ws.once('open', resolveOpen);
      client.ws.once('error', reject);
    });
    return client;
  }

  receive(frame) {
    const i = this.waiters.findIndex((w) => w.predicate(frame));
    if (i >= 0)
      this.waiters.splice(i, 1)[0].resolve(frame);
    else
      this.frames.push(frame);
  }

  // The first frame (queued or to come) that matches.
  next(predicate, what, timeoutMs = 10000) {
    const i = this.frames.findIndex(predicate);
    if (i >= 0)
      return Promise.resolve(this.frames.splice(i, 1)[0]);
    return new Promise((resolveFrame, reject) => {
      const waiter = { predicate, resolve: (f) => { clearTimeout(timer); resolveFrame(f); } };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  async request(frame) {
    const id = `t${++this.counter}`;
    this.ws.send(JSON.stringify({ ...frame, request_id: id }));
    const reply = await this.next((f) => f.request_id === id, `the reply to ${frame.type}`);
    assert.notEqual(reply.type, 'error', JSON.stringify(reply));
    return reply;
  }

  subscribe(topic, clientId) {
    return this.request({ type: 'subscribe', topic, client_id: clientId });
  }

  publish(topic, payload) {
    return this.request({ type: 'publish', topic, message: { id: crypto.randomUUID(), payload } });
  }

  // Publishes without waiting for each ack; waits for the last one.
  async burst(topic, count, payload) {
    for (let i = 0; i < count - 1; i++)
      this.ws.send(JSON.stringify({
        type: 'publish', topic, message: { id: crypto.randomUUID(), payload: { ...payload, i } },
      }));
    await this.publish(topic, { ...payload, i: count - 1 });
  }

  close() {
    this.ws.close(1000);
  }
}

// ---- the browser ----------------------------------------------------------

// What must not happen on a page: console errors, uncaught exceptions,
// failed requests (transport errors or statuses >= 400), and requests
// anywhere but the server itself.
class Watcher {
  constructor(page, origin) {
    this.origin = origin;
    this.problems = [];
    this.failed = [];
    this.consoleErrors = [];
    this.active = true;
    page.on('console', (m) => {
      if (this.active && m.type() === 'error')
        this.consoleErrors.push(`console error: ${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => this.active && this.problems.push(`uncaught: ${e.message}`));
    page.on('request', (r) => {
      const url = r.url();
      if (this.active && !url.startsWith(origin + '/') && !url.startsWith('data:'))
        this.problems.push(`request leaves the server: ${url}`);
    });
    page.on('requestfailed', (r) => this.active &&
      this.failed.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
    page.on('response', (r) => this.active && r.status() >= 400 &&
      this.failed.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`));
    page.on('websocket', (ws) => {
      if (!ws.url().startsWith(origin.replace(/^http/, 'ws') + '/'))
        this.problems.push(`WebSocket leaves the server: ${ws.url()}`);
    });
  }

  // A failure the test caused on purpose: exactly one response, and the
  // console line Chromium logs for it.
  expectFailure(pattern) {
    for (const list of [this.failed, this.consoleErrors]) {
      const i = list.findIndex((entry) => pattern.test(entry));
      assert.ok(i >= 0, `expected a failure matching ${pattern} in ${list.join('\n')}`);
      list.splice(i, 1);
    }
  }

  assertClean(what) {
    const all = [...this.problems, ...this.consoleErrors, ...this.failed];
    assert.deepEqual(all, [], `${what}: ${all.join('\n')}`);
  }
}

async function newBrowser() {
  // A fresh profile each run: launch() makes a temporary --user-data-dir.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

const text = (page, selector) => page.locator(selector).first().textContent();

function rowSelector(topic) {
  return `#topics-body tr[data-topic="${topic}"]`;
}

async function cellNumber(page, topic, cell) {
  const value = await page.locator(`${rowSelector(topic)} td.${cell}`).textContent();
  return Number(value.replace(/[^\d.]/g, ''));
}

// ---- without an api-key -------------------------------------------------------

async function testDashboard(browser) {
  const server = await Server.start();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const watcher = new Watcher(page, server.base);
  const clients = [];
  let failure = null;

  try {
    await page.goto(server.base + '/');
    assert.equal(await page.title(), 'pubsubd');
    await page.waitForSelector('#status[data-state="live"]', { timeout: 10000 });
    await page.waitForSelector('.uplot canvas');
    assert.match(await text(page, '#server-info'), /v\d+\.\d+/);
    ok('the page loads and goes live (polls answered, WebSocket open)');

    // A topic created over REST shows up by itself.
    assert.equal(await page.locator('#topics-empty').isVisible(), true);
    await server.createTopic('orders');
    await page.waitForSelector(rowSelector('orders'), { timeout: 5000 });
    assert.equal(await text(page, '#kpi-topics'), '1');
    ok('a topic created over REST appears');

    // Two subscribers and a burst of publishes over /ws.
    for (let i = 0; i < 2; i++) {
      const subscriber = await Client.open(server.wsUrl);
      clients.push(subscriber);
      await subscriber.subscribe('orders', `node-sub-${i}`);
    }
    await waitFor(async () => (await cellNumber(page, 'orders', 'subs')) === 2,
                  'the subscriber count of orders to be 2');
    const publisher = await Client.open(server.wsUrl);
    clients.push(publisher);
    await publisher.burst('orders', 60, { kind: 'burst' });
    await waitFor(async () => (await cellNumber(page, 'orders', 'msgs')) === 60,
                  'the message count of orders to be 60');
    const series = await waitFor(async () => {
      const s = await page.evaluate(() => window.pubsubDashboard.series());
      return s.published.some((v) => v > 0) ? s : null;
    }, 'the chart to show the publishes');
    const peak = Math.max(...series.published.filter((v) => v !== null));
    assert.ok(peak > 0 && peak <= 60 * 1.5, `peak publish rate ${peak}`);
    const metrics = await fetch(server.base + '/metrics');
    if (metrics.status === 200) {
      // 60 messages to 2 subscribers.
      await waitFor(async () => (await page.evaluate(() => window.pubsubDashboard.series()))
        .delivered.some((v) => v > 0), 'the chart to show the deliveries');
      await waitFor(async () => /120 since start/.test(await text(page, '#kpi-del-total')),
                    'the delivered total to be 120');
    }
    assert.match(await text(page, '#kpi-pub-total'), /\b60\b/);
    ok('publishing over /ws moves the counters and the chart');

    // Create from the page.
    await page.fill('#create-name', 'bad name!');
    await page.click('#create-form button[type="submit"]');
    assert.match(await text(page, '#create-error'), /letters, digits/);
    await page.fill('#create-name', 'dash.created');
    await page.click('#create-form button[type="submit"]');
    await page.waitForSelector(rowSelector('dash.created'), { timeout: 5000 });
    assert.ok((await server.topicNames()).includes('dash.created'));
    await page.fill('#create-name', 'orders');
    await page.click('#create-form button[type="submit"]');
    await page.waitForSelector('#create-error:not([hidden])');
    assert.match(await text(page, '#create-error'), /already exists/);
    watcher.expectFailure(/409.*\/topics$|\/topics\)$/);
    ok('creating a topic from the page works (and says why it cannot)');

    // Publish from the page; a WebSocket subscriber gets it.
    const listener = await Client.open(server.wsUrl);
    clients.push(listener);
    await listener.subscribe('dash.created', 'node-listener');
    await page.selectOption('#publish-topic', 'dash.created');
    await page.fill('#publish-payload', 'not json');
    await page.click('#publish-button');
    assert.match(await text(page, '#publish-status'), /not valid JSON/);
    await page.fill('#publish-payload', '{"from": "dashboard", "n": 1, "text": "grüße ✓"}');
    await page.click('#publish-button');
    const event = await listener.next((f) => f.type === 'event', 'the page\'s message');
    assert.equal(event.topic, 'dash.created');
    assert.deepEqual(event.message.payload, { from: 'dashboard', n: 1, text: 'grüße ✓' });
    assert.match(event.message.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await page.waitForSelector('#publish-status.ok');
    ok('publishing from the page reaches a WebSocket subscriber');

    // Watch a topic from the page: history first, then live events.
    await page.click(`${rowSelector('orders')} button.watch`);
    await page.waitForSelector(`${rowSelector('orders')}.watching`);
    await waitFor(async () => (await page.locator('#events .event-payload').count()) === 10,
                  'the last 10 messages of orders');
    await publisher.publish('orders', { live: 'yes', from: 'node' });
    await waitFor(async () => /"live": "yes"/.test(await text(page, '#events .event-payload')),
                  'the live event on the page');
    assert.match(await text(page, '#events-sub'), /orders · 11 events/);
    ok('watching a topic shows its history and then its live events');

    // Delete from the page: two clicks; subscribers are told.
    const deleteButton = page.locator(`${rowSelector('dash.created')} button.delete`);
    await deleteButton.click();
    assert.equal(await deleteButton.textContent(), 'Delete?');
    await deleteButton.click();
    await page.waitForSelector(rowSelector('dash.created'), { state: 'detached', timeout: 5000 });
    const info = await listener.next((f) => f.type === 'info' && f.msg === 'topic_deleted',
                                     'topic_deleted');
    assert.equal(info.topic, 'dash.created');
    assert.ok(!(await server.topicNames()).includes('dash.created'));
    ok('deleting a topic from the page works');

    // Deleting the watched topic stops the watch and says so.
    await server.createTopic('short-lived');
    await page.waitForSelector(rowSelector('short-lived'));
    await page.click(`${rowSelector('short-lived')} button.watch`);
    await page.waitForSelector(`${rowSelector('short-lived')}.watching`);
    await sleep(200);
    await server.request('DELETE', '/topics/short-lived');
    await waitFor(async () => /was deleted/.test(await text(page, '#events .event-info')),
                  'the page to say the watched topic was deleted');
    assert.equal(await text(page, '#events-sub'), 'Not watching');
    ok('the page notices that the watched topic was deleted');

    await screenshots(page, server, publisher, clients);

    watcher.active = false;
    watcher.assertClean('the page without an api-key');
    ok('no console error, no failed request, nothing left the host');
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    watcher.active = false;
    for (const client of clients)
      client.close();
    await context.close();
    await stopServer(server, failure);
  }
}

// A realistic picture: a few topics, subscribers, a changing publish load,
// one topic watched. Then the phone layout, which must not scroll sideways.
async function screenshots(page, server, publisher, clients) {
  const topics = ['audit.log', 'metrics:cpu', 'payments', 'user.signups'];
  for (const name of topics)
    await server.createTopic(name);
  const fanout = { 'audit.log': 1, 'metrics:cpu': 4, payments: 2, 'user.signups': 0 };
  for (const [name, n] of Object.entries(fanout)) {
    for (let i = 0; i < n; i++) {
      const subscriber = await Client.open(server.wsUrl);
      clients.push(subscriber);
      await subscriber.subscribe(name, `svc-${name}-${i}`);
    }
  }
  await page.click(`${rowSelector('payments')} button.watch`);

  // Traffic whose rate rises and falls, still running for the pictures.
  const seconds = Number(process.env.DASHBOARD_LOAD_SECONDS || 20);
  const load = { running: true };
  const loadDone = traffic(publisher, load);
  await sleep(seconds * 1000);

  // The forms as someone about to publish would leave them.
  await page.fill('#create-name', '');
  await page.selectOption('#publish-topic', 'orders');
  await page.fill('#publish-payload', '{"order": 1042, "amount": 19.99, "currency": "EUR"}');
  await page.click('#publish-button');
  await page.waitForSelector('#publish-status.ok');
  await page.waitForFunction(() => document.getElementById('toasts').childElementCount === 0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.mouse.move(0, 0);
  await sleep(1100);

  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await assertNoSidewaysScroll(page, 1280);
  await page.screenshot({ path: join(SCREENSHOT_DIR, 'dashboard-1280.png') });

  await page.setViewportSize({ width: 390, height: 844 });
  await sleep(600);
  await assertNoSidewaysScroll(page, 390);
  await page.screenshot({ path: join(SCREENSHOT_DIR, 'dashboard-390.png') });
  await page.setViewportSize({ width: 1280, height: 800 });
  load.running = false;
  await loadDone;
  ok(`screenshots in ${SCREENSHOT_DIR}: dashboard-1280.png, dashboard-390.png`);
}

async function traffic(publisher, load) {
  for (let s = 0; load.running; s++) {
    const wave = Math.round(40 + 30 * Math.sin(s / 3));
    const started = Date.now();
    await Promise.all([
      publisher.burst('orders', wave, { order: 1000 + s, amount: 19.99 }),
      publisher.burst('metrics:cpu', 10, { host: 'web-1', cpu: 0.42 }),
      s % 2 === 0 ? publisher.publish('payments', {
        payment: `pay_${7310 + s}`, status: 'captured', amount: 42.5 + s, currency: 'EUR',
      }) : Promise.resolve(),
      s % 4 === 0 ? publisher.publish('audit.log', { user: 'ana', action: 'login' })
                  : Promise.resolve(),
    ]);
    await sleep(Math.max(0, 1000 - (Date.now() - started)));
  }
}

async function assertNoSidewaysScroll(page, width) {
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scrollWidth <= width, `the page is ${scrollWidth}px wide at ${width}px`);
  // Nothing sticks out of the window either (overflow hidden somewhere).
  const wide = await page.evaluate((w) => Array.from(document.querySelectorAll('body *'))
    .filter((e) => e.getClientRects().length > 0 && e.getBoundingClientRect().right > w + 0.5)
    .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`), width);
  assert.deepEqual(wide, [], `elements past the right edge at ${width}px`);
}

// ---- with an api-key ------------------------------------------------------------

async function testApiKey(browser) {
  const server = await Server.start(['--api-key', API_KEY]);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const watcher = new Watcher(page, server.base);
  const clients = [];
  let failure = null;

  try {
    await server.createTopic('secret-orders', API_KEY);
    await page.goto(server.base + '/');
    await page.waitForSelector('#key-dialog[open]', { timeout: 10000 });
    assert.equal(await page.locator('#key-error').isVisible(), false);
    assert.equal(await text(page, '#status-text'), 'Locked');
    assert.equal(await page.locator(rowSelector('secret-orders')).count(), 0);
    ok('with an api-key the page asks for it');

    await page.fill('#key-input', 'wrong-key');
    await page.click('#key-form button[type="submit"]');
    await page.waitForSelector('#key-error:not([hidden])', { timeout: 10000 });
    assert.equal(await page.locator('#key-dialog[open]').count(), 1);
    ok('a wrong key is refused and the page asks again');

    // Only the 401s of the locked page so far; nothing else failed.
    for (const failure of watcher.failed)
      assert.match(failure, /^HTTP 401: GET http:\/\/[^/]+\/(stats|metrics)$/, failure);
    for (const message of watcher.consoleErrors)
      assert.match(message, /status of 401/, message);
    assert.deepEqual(watcher.problems, []);
    watcher.failed.length = 0;
    watcher.consoleErrors.length = 0;

    await page.fill('#key-input', API_KEY);
    await page.click('#key-form button[type="submit"]');
    await page.waitForSelector('#key-dialog', { state: 'hidden' });
    await page.waitForSelector('#status[data-state="live"]', { timeout: 10000 });
    await page.waitForSelector(rowSelector('secret-orders'));
    assert.equal(await page.locator('#forget-key').isVisible(), true);
    ok('with the right key the page shows the topics and goes live');

    // REST and WebSocket calls carry the key.
    const listener = await Client.open(`${server.wsUrl}?api_key=${API_KEY}`);
    clients.push(listener);
    await listener.subscribe('secret-orders', 'node-listener');
    await page.fill('#create-name', 'secret-new');
    await page.click('#create-form button[type="submit"]');
    await page.waitForSelector(rowSelector('secret-new'));
    await page.selectOption('#publish-topic', 'secret-orders');
    await page.fill('#publish-payload', '{"authorized": true}');
    await page.click('#publish-button');
    const event = await listener.next((f) => f.type === 'event', 'the page\'s message');
    assert.deepEqual(event.message.payload, { authorized: true });
    ok('with the key, creating and publishing from the page work');

    // Many topics: at most 200 rows, and a filter finds the others.
    assert.equal(await page.locator('#topics-filter').isVisible(), false);
    for (let i = 0; i < 210; i++)
      await server.createTopic(`bulk-${String(i).padStart(3, '0')}`, API_KEY);
    await waitFor(async () => /first 200 of 212 topics/.test(await text(page, '#topics-more')),
                  'the note that 200 of the 212 topics are shown');
    assert.equal(await page.locator('#topics-body tr').count(), 200);
    await page.fill('#topics-filter', 'bulk-20');
    await waitFor(async () => (await page.locator('#topics-body tr').count()) === 10,
                  'the 10 topics matching bulk-20');
    assert.equal(await page.locator('#topics-more').isVisible(), false);
    assert.equal(await page.locator(rowSelector('bulk-209')).count(), 1);
    await page.fill('#topics-filter', 'nothing-like-this');
    await waitFor(async () => /No topic name contains/.test(await text(page, '#topics-more')),
                  'the note that nothing matches');
    ok('with many topics the table shows 200 and a filter finds the others');

    // The key is kept for the tab: a reload does not ask again.
    await page.reload();
    await page.waitForSelector('#status[data-state="live"]', { timeout: 10000 });
    assert.equal(await page.locator('#key-dialog[open]').count(), 0);
    ok('a reload keeps the key (sessionStorage)');

    watcher.active = false;
    watcher.assertClean('the page after the key was given');
    ok('after the key: no console error, no failed request');
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    watcher.active = false;
    for (const client of clients)
      client.close();
    await context.close();
    await stopServer(server, failure);
  }
}

// ---- main -------------------------------------------------------------------------

const browser = await newBrowser();
try {
  await testDashboard(browser);
  await testApiKey(browser);
} finally {
  await browser.close();
}
console.log(`${step} passed, 0 failed`);
