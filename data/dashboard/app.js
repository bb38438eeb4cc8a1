/* The pubsubd dashboard (GET /).
 *
 * Once a second it reads /stats, /health and /metrics and turns counter
 * deltas into rates; the chart keeps the last five minutes. It is also a
 * WebSocket client of /ws (SPEC §2): publishing from the page and watching a
 * topic go over one connection. Without /metrics (an older server) it still
 * works: the publish rate comes from the topics' message counts and what
 * only /metrics knows shows as "—".
 *
 * With an api-key on the server, the first call answers 401: the page asks
 * for the key in a dialog, keeps it in sessionStorage (this tab only), and
 * sends it as X-API-Key, or as ?api_key= on the WebSocket URL (browsers
 * cannot set headers there). A later 401 asks again.
 *
 * No framework, no build step; text is always set with textContent.
 *
 * SPDX-License-Identifier: MIT
 */
(() => {
  'use strict';

  const POLL_MS = 1000;
  const WINDOW_SEC = 300;
  const MIN_WINDOW_SEC = 60;
  const AVERAGE_MS = 5000;
  const KEY_STORAGE = 'pubsubd.api-key';
  const MAX_EVENTS = 200;
  const REPLAY = 10;
  const REPLY_TIMEOUT_MS = 8000;
  const TOPIC_NAME = /^[A-Za-z0-9._:-]{1,128}$/;
  const MAX_ROWS = 200;
  const FILTER_FROM = 8;    // topics: more than that, and the filter shows

  const $ = (id) => document.getElementById(id);
  const numberFormat = new Intl.NumberFormat();

  const state = {
    apiKey: storageGet(),
    keyGeneration: 0,     // bumped whenever the key changes
    locked: false,        // waiting for the operator to type a key
    metrics: undefined,   // false once /metrics answered 404
    polling: false,
    pollAgain: false,
    pollTimer: 0,
    failures: 0,          // polls failed in a row
    reached: false,       // a poll has succeeded at least once
    samples: [],          // the last few seconds of samples, for deltas
    topics: new Map(),    // name → { subscribers, messages, rate }
    rows: new Map(),      // name → <tr>
    xs: [],
    published: [],
    delivered: [],
    chart: null,
    ws: null,
    wsOpen: false,
    wsFailures: 0,
    wsNotBefore: 0,
    pending: new Map(),   // request_id → { resolve, reject, timer }
    requestCounter: 0,
    clientId: 'dashboard-' + randomHex(6),
    watching: null,
    lastSeq: null,        // of the watched topic, when the server sends seq
    replayUntil: null,    // events up to this seq are the replayed history
    eventCount: 0,
  };

  /* ---- small helpers --------------------------------------------------- */

  function storageGet() {
    try {
      return sessionStorage.getItem(KEY_STORAGE);
    } catch (_) {
      return null;
    }
  }

  function storageSet(value) {
    try {
      if (value === null)
        sessionStorage.removeItem(KEY_STORAGE);
      else
        sessionStorage.setItem(KEY_STORAGE, value);
    } catch (_) {
      /* Storage disabled: the key lasts as long as the page. */
    }
  }

  function randomHex(bytes) {
    return Array.from(crypto.getRandomValues(new Uint8Array(bytes)),
                      (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /* crypto.randomUUID() exists only in secure contexts, and a dashboard is
   * often opened over plain HTTP on another host. */
  function uuid() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className)
      node.className = className;
    if (text !== undefined)
      node.textContent = text;
    return node;
  }

  function icon(name) {
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    const use = document.createElementNS('http://www.w3.org/2000/svg', 'use');
    svg.setAttribute('aria-hidden', 'true');
    use.setAttribute('href', '#i-' + name);
    svg.append(use);
    return svg;
  }

  function formatCount(n) {
    return n === null || n === undefined ? '—' : numberFormat.format(n);
  }

  function formatRate(r) {
    if (r === null || r === undefined || !Number.isFinite(r))
      return '—';
    if (r >= 100000)
      return (r / 1000).toFixed(0) + 'k';
    if (r >= 10000)
      return (r / 1000).toFixed(1) + 'k';
    if (r >= 100)
      return numberFormat.format(Math.round(r));
    if (r === 0)
      return '0';
    return r.toFixed(1);
  }

  function formatTick(value) {
    if (value >= 1000)
      return (value / 1000).toFixed(value % 1000 === 0 ? 0 : 1) + 'k';
    return String(Number(value.toFixed(2)));
  }

  /* A payload as one line that wraps at spaces: {"a": 1, "b": [2, 3]}. */
  function compactJson(value) {
    if (Array.isArray(value))
      return '[' + value.map(compactJson).join(', ') + ']';
    if (value !== null && typeof value === 'object')
      return '{' + Object.entries(value).map(([k, v]) => JSON.stringify(k) + ': ' + compactJson(v))
        .join(', ') + '}';
    const text = JSON.stringify(value);
    return text === undefined ? 'null' : text;
  }

  function formatUptime(sec) {
    const d = Math.floor(sec / 86400);
    const h = Math.floor((sec % 86400) / 3600);
    const m = Math.floor((sec % 3600) / 60);
    const s = Math.floor(sec % 60);
    if (d > 0)
      return `${d}d ${h}h`;
    if (h > 0)
      return `${h}h ${String(m).padStart(2, '0')}m`;
    if (m > 0)
      return `${m}m ${String(s).padStart(2, '0')}s`;
    return `${s}s`;
  }

  function formatClock(date, millis) {
    const p = (n, w = 2) => String(n).padStart(w, '0');
    const text = `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
    return millis ? `${text}.${p(date.getMilliseconds(), 3)}` : text;
  }

  function plural(n, one, many) {
    return `${formatCount(n)} ${n === 1 ? one : many}`;
  }

  function byteOrder(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function toast(text, kind) {
    const node = element('div', 'toast' + (kind ? ' ' + kind : ''), text);
    $('toasts').append(node);
    setTimeout(() => node.remove(), kind === 'error' ? 6000 : 3500);
  }

  /* ---- REST ------------------------------------------------------------ */

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function authHeaders() {
    return state.apiKey ? { 'X-API-Key': state.apiKey } : {};
  }

  function noteServer(response) {
    const server = response.headers.get('Server') || '';
    const match = /pubsubd\/(\S+)/.exec(server);
    if (match)
      $('server-info').textContent = `${location.host} · v${match[1]}`;
  }

  function unauthorized(generation) {
    /* A late answer to a request made with the previous key changes nothing. */
    if (generation === state.keyGeneration)
      lock();
    return new ApiError(401, 'UNAUTHORIZED', 'an API key is required');
  }

  async function api(method, path, body) {
    const generation = state.keyGeneration;
    const init = { method, headers: authHeaders(), cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    noteServer(response);
    if (response.status === 401)
      throw unauthorized(generation);
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      /* Not JSON: the status says enough. */
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || `HTTP_${response.status}`,
                         error.message || response.statusText);
    }
    return data;
  }

  /* Prometheus text format 0.0.4: `name{label="value",…} value [timestamp]`,
   * comments and blank lines skipped. Returns name → [{ labels, value }]. */
  function parseMetrics(text) {
    const metrics = new Map();
    const lineRe = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
    const labelRe = /([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line[0] === '#')
        continue;
      const match = lineRe.exec(line);
      if (!match)
        continue;
      const labels = {};
      for (const label of (match[2] || '').matchAll(labelRe))
        labels[label[1]] = label[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      const value = Number(match[3].replace(/^\+?Inf$/, 'Infinity'));
      if (!metrics.has(match[1]))
        metrics.set(match[1], []);
      metrics.get(match[1]).push({ labels, value });
    }
    return metrics;
  }

  function metricSum(metrics, name, filter) {
    const samples = metrics && metrics.get(name);
    if (!samples)
      return null;
    let total = 0;
    for (const { labels, value } of samples)
      if (!filter || filter(labels))
        total += value;
    return total;
  }

  async function fetchMetrics() {
    if (state.metrics === false)
      return null;
    const generation = state.keyGeneration;
    const response = await fetch('/metrics', { headers: authHeaders(), cache: 'no-store' });
    if (response.status === 404) {
      state.metrics = false;
      return null;
    }
    if (response.status === 401)
      throw unauthorized(generation);
    if (!response.ok)
      return null;
    state.metrics = true;
    return parseMetrics(await response.text());
  }

  /* ---- polling --------------------------------------------------------- */

  async function poll() {
    clearTimeout(state.pollTimer);
    state.pollTimer = 0;
    if (state.locked)
      return;
    if (state.polling) {
      state.pollAgain = true;
      return;
    }
    state.polling = true;
    try {
      const [stats, health, metrics] = await Promise.all([
        api('GET', '/stats'), api('GET', '/health'), fetchMetrics(),
      ]);
      state.failures = 0;
      state.reached = true;
      takeSample(stats, health, metrics);
      connectSocket();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) {
        state.failures++;
        addGap();
      }
    } finally {
      state.polling = false;
    }
    renderStatus();
    if (state.locked)
      return;
    const delay = state.pollAgain ? 0 : state.failures > 0 ? 2000 : POLL_MS;
    state.pollAgain = false;
    state.pollTimer = setTimeout(poll, delay);
  }

  /* After an action: show its effect now rather than within a second. */
  function pollSoon() {
    if (state.polling)
      state.pollAgain = true;
    else if (!state.locked) {
      clearTimeout(state.pollTimer);
      state.pollTimer = setTimeout(poll, 100);
    }
  }

  /* Rates between two samples, per second; null where unknown or where a
   * counter went down (a topic deleted and created again). */
  function rates(sample, before) {
    const seconds = (sample.time - before.time) / 1000;
    const rate = (value, old) =>
      seconds > 0 && value !== null && old !== null && old !== undefined && value >= old
        ? (value - old) / seconds : null;
    const topics = new Map();
    let fromTopics = 0;
    for (const [name, messages] of sample.messages) {
      /* A topic new since then got all its messages in between. */
      const r = rate(messages, before.messages.has(name) ? before.messages.get(name) : 0);
      topics.set(name, r);
      fromTopics += r === null ? 0 : r;
    }
    return {
      topics,
      published: sample.published !== null ? rate(sample.published, before.published) : fromTopics,
      delivered: rate(sample.delivered, before.delivered),
    };
  }

  /* The chart gets one point a second; the numbers shown (cards, legend,
   * table) are averaged over the last few seconds, so a topic with a
   * message every other second reads 0.5/s rather than 0 and 1 in turn. */
  function takeSample(stats, health, metrics) {
    const sample = {
      time: performance.now(),
      uptime: health.uptime_sec,
      messages: new Map(Object.entries(stats.topics).map(([name, t]) => [name, t.messages])),
      published: metricSum(metrics, 'pubsub_messages_published_total'),
      delivered: metricSum(metrics, 'pubsub_events_delivered_total'),
    };
    const samples = state.samples;
    const last = samples.length > 0 ? samples[samples.length - 1] : null;
    /* A restarted server counts from zero again: no rate across that. */
    if (last !== null && sample.uptime < last.uptime)
      samples.length = 0;
    samples.push(sample);
    while (samples.length > 2 && sample.time - samples[1].time >= AVERAGE_MS)
      samples.shift();

    const oneSecond = samples.length > 1 ? rates(sample, samples[samples.length - 2]) : null;
    const averaged = samples.length > 1 ? rates(sample, samples[0]) : null;
    if (oneSecond)
      addPoint(oneSecond.published, oneSecond.delivered);

    state.topics = new Map();
    for (const [name, t] of Object.entries(stats.topics))
      state.topics.set(name, {
        subscribers: t.subscribers,
        messages: t.messages,
        rate: averaged ? averaged.topics.get(name) : null,
      });
    renderOverview(health, metrics, sample, averaged ? averaged.published : null,
                   averaged ? averaged.delivered : null);
    renderTopics();
  }

  /* ---- the chart ------------------------------------------------------- */

  function addPoint(published, delivered) {
    const now = Date.now() / 1000;
    state.xs.push(now);
    state.published.push(published);
    state.delivered.push(delivered);
    while (state.xs.length > 0 && state.xs[0] < now - WINDOW_SEC - 5) {
      state.xs.shift();
      state.published.shift();
      state.delivered.shift();
    }
    redrawChart();
  }

  /* A failed poll breaks the lines instead of drawing across the outage. */
  function addGap() {
    if (state.xs.length > 0 && state.published[state.published.length - 1] !== null)
      addPoint(null, null);
    state.samples.length = 0;
  }

  /* The window grows from one minute to five as data comes in, so a
   * dashboard opened a moment ago is not a flat line with a tail. */
  function chartSpan(now) {
    const since = state.xs.length > 0 ? now - state.xs[0] : 0;
    return Math.min(WINDOW_SEC, Math.max(MIN_WINDOW_SEC, Math.ceil(since / 60) * 60));
  }

  function redrawChart() {
    if (!state.chart)
      return;
    state.chart.setData([state.xs, state.published, state.delivered]);
    const minutes = chartSpan(Date.now() / 1000) / 60;
    setText('chart-sub', `Per second, last ${minutes === 1 ? 'minute' : minutes + ' minutes'}`);
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function withAlpha(hex, alpha) {
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
    if (!m)
      return hex;
    return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${alpha})`;
  }

  function areaFill(color) {
    return (u) => {
      const gradient = u.ctx.createLinearGradient(0, u.bbox.top, 0, u.bbox.top + u.bbox.height);
      gradient.addColorStop(0, withAlpha(color, 0.22));
      gradient.addColorStop(1, withAlpha(color, 0.01));
      return gradient;
    };
  }

  function makeChart() {
    const box = $('chart');
    const pub = cssVar('--pub');
    const del = cssVar('--del');
    const muted = cssVar('--muted');
    const grid = cssVar('--grid');
    const font = '12px ' + cssVar('--font');
    const tip = element('div', 'chart-tip');
    tip.hidden = true;

    const options = {
      width: Math.max(box.clientWidth, 100),
      height: Math.max(box.clientHeight, 100),
      padding: [10, 8, 0, 0],
      legend: { show: false },
      cursor: {
        y: false,
        drag: { x: false, y: false, setScale: false },
        points: { size: 8, width: 2 },
      },
      scales: {
        x: {
          time: true,
          range: () => {
            const now = Date.now() / 1000;
            return [now - chartSpan(now), now];
          },
        },
        y: {
          range: (u, min, max) => [0, max > 0 ? max * 1.18 : 1],
        },
      },
      axes: [
        {
          stroke: muted,
          font,
          size: 30,
          grid: { show: false },
          ticks: { stroke: grid, width: 1, size: 5 },
          space: 70,
          /* Seconds only when the ticks are less than a minute apart; no
           * label so close to the right edge that it would be cut. */
          values: (u, ticks, axis, space, step) => {
            const { min, max } = u.scales.x;
            const width = u.bbox.width / uPlot.pxRatio;
            return ticks.map((t) => ((max - t) / (max - min)) * width < 30 ? null
              : formatClock(new Date(t * 1000), false).slice(0, step < 60 ? 8 : 5));
          },
        },
        {
          stroke: muted,
          font,
          size: 46,
          gap: 6,
          space: 36,
          grid: { stroke: grid, width: 1 },
          ticks: { show: false },
          values: (u, ticks) => ticks.map(formatTick),
        },
      ],
      series: [
        {},
        { label: 'Published', stroke: pub, width: 2, fill: areaFill(pub), points: { show: false } },
        { label: 'Delivered', stroke: del, width: 2, fill: areaFill(del), points: { show: false } },
      ],
      hooks: {
        setCursor: [(u) => showTip(u, box, tip)],
      },
    };
    state.chart = new uPlot(options, [state.xs, state.published, state.delivered], box);
    box.append(tip);
  }

  function showTip(u, box, tip) {
    const { idx, left } = u.cursor;
    /* The cursor snaps to the nearest point: none near means no tip. */
    if (idx === null || idx === undefined || left === undefined || left < 0 ||
        Math.abs(u.posToVal(left, 'x') - u.data[0][idx]) > 3) {
      tip.hidden = true;
      return;
    }
    tip.replaceChildren(element('div', 'tip-time', formatClock(new Date(u.data[0][idx] * 1000), false)));
    for (const [series, className, name] of [[1, 'pub', 'Published'], [2, 'del', 'Delivered']]) {
      const row = element('div', 'tip-row ' + className);
      row.append(element('span', 'swatch'), element('span', '', name),
                 element('strong', '', formatRate(u.data[series][idx]) + '/s'));
      tip.append(row);
    }
    tip.hidden = false;
    const over = u.over.getBoundingClientRect();
    const outer = box.getBoundingClientRect();
    const x = over.left - outer.left + left;
    const width = tip.offsetWidth;
    tip.style.left = (x + 14 + width > outer.width ? x - 14 - width : x + 14) + 'px';
  }

  function resizeChart() {
    const box = $('chart');
    if (state.chart && box.clientWidth > 0)
      state.chart.setSize({ width: box.clientWidth, height: box.clientHeight });
  }

  /* ---- rendering ------------------------------------------------------- */

  function setText(id, text) {
    const node = $(id);
    if (node.textContent !== text)
      node.textContent = text;
  }

  function renderOverview(health, metrics, sample, publishedRate, deliveredRate) {
    let messages = 0;
    let watched = 0;
    for (const t of state.topics.values()) {
      messages += t.messages;
      if (t.subscribers > 0)
        watched++;
    }

    setText('uptime', formatUptime(health.uptime_sec));
    setText('kpi-topics', formatCount(state.topics.size));
    setText('kpi-topics-sub', plural(messages, 'message', 'messages'));
    setText('kpi-subscribers', formatCount(health.subscribers));
    setText('kpi-subscribers-sub', `on ${plural(watched, 'topic', 'topics')}`);
    setText('topics-sub', state.topics.size === 0 ? 'None yet'
      : `${plural(state.topics.size, 'topic', 'topics')}, ${formatCount(watched)} with subscribers`);

    setText('kpi-pub-rate', formatRate(publishedRate));
    setText('legend-pub', formatRate(publishedRate) + '/s');
    setText('kpi-pub-total', sample.published !== null
      ? `${formatCount(sample.published)} since start`
      : `${formatCount(messages)} in current topics`);

    setText('kpi-del-rate', formatRate(deliveredRate));
    $('kpi-del-rate').parentElement.classList.toggle('unknown', deliveredRate === null);
    $('kpi-pub-rate').parentElement.classList.toggle('unknown', publishedRate === null);
    setText('legend-del', deliveredRate === null ? '—' : formatRate(deliveredRate) + '/s');
    setText('kpi-del-total', sample.delivered !== null
      ? `${formatCount(sample.delivered)} since start` : 'needs /metrics');

    const ws = metricSum(metrics, 'pubsub_connections', (l) => l.type === 'websocket');
    const http = metricSum(metrics, 'pubsub_connections', (l) => l.type === 'http');
    const connections = metricSum(metrics, 'pubsub_connections');
    /* Refused connections (over max-connections…) only when there are some. */
    const refused = metricSum(metrics, 'pubsub_connections_refused_total');
    setText('kpi-conns', formatCount(connections));
    setText('kpi-conns-sub', connections === null ? 'needs /metrics'
      : `${formatCount(ws)} WebSocket · ${formatCount(http)} HTTP` +
        (refused > 0 ? ` · ${formatCount(refused)} refused` : ''));

    const slow = metricSum(metrics, 'pubsub_slow_consumers_total');
    setText('kpi-slow', formatCount(slow));
    $('kpi-slow').classList.toggle('warn', slow > 0);
    setText('kpi-slow-sub', slow === null ? 'needs /metrics' : 'cut since start');
  }

  function renderStatus() {
    const pill = $('status');
    let stateName;
    let text;
    if (state.locked) {
      stateName = 'locked';
      text = 'Locked';
    } else if (state.failures > 0) {
      stateName = 'down';
      text = state.reached ? 'Unreachable' : 'Connecting';
    } else if (!state.wsOpen) {
      stateName = 'reconnecting';
      text = 'Connecting';
    } else {
      stateName = 'live';
      text = 'Live';
    }
    pill.dataset.state = stateName;
    setText('status-text', text);
    $('forget-key').hidden = !state.apiKey;
  }

  function makeRow(name) {
    const row = element('tr');
    row.dataset.topic = name;
    const nameCell = element('td');
    nameCell.append(element('span', 'topic-name', name));
    const subs = element('td', 'num subs');
    const msgs = element('td', 'num msgs');
    const rate = element('td', 'num rate');

    const actions = element('td', 'actions');
    const group = element('div', 'row-actions');
    const button = (iconName, label, className, handler) => {
      const b = element('button', 'icon-btn' + (className ? ' ' + className : ''));
      b.type = 'button';
      b.title = label;
      b.setAttribute('aria-label', `${label} ${name}`);
      b.append(icon(iconName));
      b.addEventListener('click', handler);
      return b;
    };
    group.append(
      button('eye', 'Watch', 'watch', () => watch(name)),
      button('send', 'Publish to', 'publish', () => choosePublishTopic(name)),
      button('trash', 'Delete', 'danger delete', (e) => confirmDelete(name, e.currentTarget)));
    actions.append(group);
    row.append(nameCell, subs, msgs, rate, actions);
    return row;
  }

  /* At most MAX_ROWS rows, so ten thousand topics do not mean ten thousand
   * rows updated every second; past a few, a filter finds the others. */
  function renderTopics() {
    const body = $('topics-body');
    const names = Array.from(state.topics.keys()).sort(byteOrder);
    const filterBox = $('topics-filter');
    const filter = filterBox.value.trim();
    const matching = filter === '' ? names : names.filter((name) => name.includes(filter));
    const shown = matching.slice(0, MAX_ROWS);
    const shownSet = new Set(shown);
    for (const [name, row] of state.rows) {
      if (!shownSet.has(name)) {
        row.remove();
        state.rows.delete(name);
      }
    }
    filterBox.hidden = names.length <= FILTER_FROM && filter === '';
    let note = '';
    if (filter !== '' && matching.length === 0)
      note = `No topic name contains “${filter}”.`;
    else if (shown.length < matching.length)
      note = `Showing the first ${formatCount(shown.length)} of ${formatCount(matching.length)}` +
        ' topics; filter to find the others.';
    setText('topics-more', note);
    $('topics-more').hidden = note === '';
    shown.forEach((name, i) => {
      let row = state.rows.get(name);
      if (!row) {
        row = makeRow(name);
        state.rows.set(name, row);
      }
      if (body.children[i] !== row)
        body.insertBefore(row, body.children[i] || null);
      const t = state.topics.get(name);
      const [, subs, msgs, rate] = row.children;
      subs.textContent = formatCount(t.subscribers);
      subs.dataset.label = t.subscribers === 1 ? 'subscriber' : 'subscribers';
      subs.classList.toggle('zero', t.subscribers === 0);
      msgs.textContent = formatCount(t.messages);
      msgs.dataset.label = t.messages === 1 ? 'message' : 'messages';
      rate.textContent = formatRate(t.rate) + (t.rate === null ? '' : '/s');
      rate.classList.toggle('zero', !t.rate);
      row.classList.toggle('watching', name === state.watching);
    });
    $('topics-empty').hidden = names.length > 0;
    fillTopicSelect($('publish-topic'), names);
    fillTopicSelect($('watch-topic'), names);
  }

  function fillTopicSelect(select, names) {
    const current = Array.from(select.options, (o) => o.value);
    if (current.length === names.length && current.every((v, i) => v === names[i]))
      return;
    const chosen = select.value;
    select.replaceChildren();
    if (names.length === 0) {
      const option = element('option', '', 'No topics yet');
      option.value = '';
      select.append(option);
      select.disabled = true;
      return;
    }
    select.disabled = false;
    for (const name of names) {
      const option = element('option', '', name);
      option.value = name;
      select.append(option);
    }
    if (names.includes(chosen))
      select.value = chosen;
  }

  /* ---- topics: create, delete ------------------------------------------ */

  function showCreateError(text) {
    const node = $('create-error');
    node.textContent = text || '';
    node.hidden = !text;
    $('create-name').setAttribute('aria-invalid', text ? 'true' : 'false');
  }

  async function createTopic(event) {
    event.preventDefault();
    const input = $('create-name');
    const name = input.value.trim();
    if (!TOPIC_NAME.test(name)) {
      showCreateError(name === '' ? 'Type a name for the new topic.'
        : 'Topic names are 1–128 characters: letters, digits, and . _ - :');
      input.focus();
      return;
    }
    showCreateError(null);
    try {
      await api('POST', '/topics', { name });
      input.value = '';
      toast(`Created topic “${name}”`);
      ensureTopicOption(name);
      $('publish-topic').value = name;
      pollSoon();
    } catch (error) {
      if (error.status === 401)
        return;
      showCreateError(error.code === 'TOPIC_EXISTS' ? `Topic “${name}” already exists.`
        : `Could not create “${name}”: ${error.message}`);
    }
  }

  /* So a topic can be chosen before the next poll lists it. */
  function ensureTopicOption(name) {
    for (const select of [$('publish-topic'), $('watch-topic')]) {
      if (Array.from(select.options).some((o) => o.value === name))
        continue;
      if (select.disabled) {
        select.replaceChildren();
        select.disabled = false;
      }
      const option = element('option', '', name);
      option.value = name;
      select.append(option);
    }
  }

  /* Two clicks, no modal: the button asks "Delete?" for a few seconds. */
  function confirmDelete(name, button) {
    const group = button.parentElement;
    if (!button.classList.contains('confirm')) {
      button.classList.add('confirm');
      group.classList.add('confirming');
      button.replaceChildren(document.createTextNode('Delete?'));
      button.setAttribute('aria-label', `Confirm: delete ${name}`);
      button._revert = setTimeout(() => {
        button.classList.remove('confirm');
        group.classList.remove('confirming');
        button.replaceChildren(icon('trash'));
        button.setAttribute('aria-label', `Delete ${name}`);
      }, 4000);
      return;
    }
    clearTimeout(button._revert);
    button.disabled = true;
    api('DELETE', '/topics/' + encodeURIComponent(name))
      .then(() => {
        toast(`Deleted topic “${name}”`);
        const row = state.rows.get(name);
        if (row) {
          row.remove();
          state.rows.delete(name);
        }
        pollSoon();
      })
      .catch((error) => {
        if (error.status !== 401)
          toast(`Could not delete “${name}”: ${error.message}`, 'error');
        button.disabled = false;
      });
  }

  /* ---- the WebSocket --------------------------------------------------- */

  function socketUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = state.apiKey ? '?api_key=' + encodeURIComponent(state.apiKey) : '';
    return `${scheme}//${location.host}/ws${query}`;
  }

  /* Called after each good poll: the server is up and the key is right, so
   * a failed upgrade is not tried over and over against a server that is
   * down (each failure is a console error in the browser). */
  function connectSocket() {
    if (state.ws || state.locked || Date.now() < state.wsNotBefore)
      return;
    const ws = new WebSocket(socketUrl());
    state.ws = ws;
    ws.addEventListener('open', () => {
      state.wsOpen = true;
      state.wsFailures = 0;
      renderStatus();
      if (state.watching)
        subscribe(state.watching, true);
    });
    ws.addEventListener('message', (event) => onFrame(event.data));
    ws.addEventListener('close', () => {
      if (state.ws !== ws)
        return;
      const wasOpen = state.wsOpen;
      state.ws = null;
      state.wsOpen = false;
      state.wsFailures++;
      state.wsNotBefore = Date.now() + Math.min(15000, 500 * 2 ** Math.min(state.wsFailures, 5));
      failPending('the connection to the server closed');
      if (wasOpen && state.watching)
        addNote('Connection lost; reconnecting…');
      renderStatus();
    });
  }

  function closeSocket() {
    const ws = state.ws;
    state.ws = null;
    state.wsOpen = false;
    failPending('the connection to the server closed');
    if (ws)
      ws.close(1000);
  }

  function failPending(message) {
    for (const { reject, timer } of state.pending.values()) {
      clearTimeout(timer);
      reject(new Error(message));
    }
    state.pending.clear();
  }

  /* Sends a request frame; resolves with its ack or pong, rejects with the
   * server's error message. */
  function request(frame) {
    return new Promise((resolve, reject) => {
      if (!state.wsOpen) {
        reject(new Error('not connected to the server yet'));
        return;
      }
      const id = `r${++state.requestCounter}`;
      const timer = setTimeout(() => {
        state.pending.delete(id);
        reject(new Error('the server did not answer'));
      }, REPLY_TIMEOUT_MS);
      state.pending.set(id, { resolve, reject, timer });
      state.ws.send(JSON.stringify({ ...frame, request_id: id }));
    });
  }

  function onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (_) {
      return;
    }
    if (frame.type === 'ack' || frame.type === 'pong' || frame.type === 'error') {
      const pending = frame.request_id !== undefined && state.pending.get(frame.request_id);
      if (pending) {
        state.pending.delete(frame.request_id);
        clearTimeout(pending.timer);
        if (frame.type === 'error')
          pending.reject(new Error((frame.error && frame.error.message) || 'error'));
        else
          pending.resolve(frame);
      } else if (frame.type === 'error' && frame.error) {
        toast(frame.error.message || frame.error.code, 'error');
      }
    } else if (frame.type === 'event') {
      if (frame.topic === state.watching)
        addEvent(frame);
    } else if (frame.type === 'info' && frame.topic === state.watching && state.watching) {
      if (frame.msg === 'topic_deleted') {
        addNote(`Topic “${frame.topic}” was deleted.`);
        stopWatching(false);
      } else if (frame.msg === 'messages_lost') {
        addNote('Some messages were lost while the cluster was down.');
      } else if (frame.msg === 'cluster_unavailable') {
        addNote('The cluster is unavailable; events resume when it is back.');
      }
    }
  }

  /* ---- publish --------------------------------------------------------- */

  function choosePublishTopic(name) {
    $('publish-topic').value = name;
    const payload = $('publish-payload');
    payload.focus();
    payload.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  function setPublishStatus(text, kind) {
    const node = $('publish-status');
    node.textContent = text;
    node.className = 'form-status' + (kind ? ' ' + kind : '');
    node.title = text;
  }

  async function publish(event) {
    event.preventDefault();
    const topic = $('publish-topic').value;
    const textarea = $('publish-payload');
    if (!topic) {
      setPublishStatus('Create a topic first.', 'error');
      return;
    }
    let payload;
    try {
      payload = JSON.parse(textarea.value);
      textarea.removeAttribute('aria-invalid');
    } catch (_) {
      textarea.setAttribute('aria-invalid', 'true');
      setPublishStatus('The payload is not valid JSON (text needs "quotes").', 'error');
      return;
    }
    const button = $('publish-button');
    button.disabled = true;
    try {
      const ack = await request({ type: 'publish', topic, message: { id: uuid(), payload } });
      /* A new line each time, even for the same message twice: the seq
       * (SPEC §8) where the server gives one, else the time. */
      setPublishStatus(typeof ack.seq === 'number' ? `Published to ${topic} as #${ack.seq}`
        : `Published to ${topic} at ${formatClock(new Date(), false)}`, 'ok');
      pollSoon();
    } catch (error) {
      setPublishStatus(`Not published: ${error.message}`, 'error');
    } finally {
      button.disabled = false;
    }
  }

  /* ---- watch a topic --------------------------------------------------- */

  function renderWatch() {
    const button = $('watch-button');
    const watching = state.watching;
    const selected = $('watch-topic').value;
    const stop = watching !== null && watching === selected;
    button.textContent = stop ? 'Stop' : 'Watch';
    button.setAttribute('aria-pressed', stop ? 'true' : 'false');
    setText('events-sub', watching === null ? 'Not watching'
      : `${watching} · ${plural(state.eventCount, 'event', 'events')}`);
    $('events-empty').hidden = $('events').children.length > 0;
    for (const [name, row] of state.rows)
      row.classList.toggle('watching', name === watching);
  }

  async function subscribe(topic, resumed) {
    try {
      const ack = await request({
        type: 'subscribe', topic, client_id: state.clientId, last_n: resumed ? 0 : REPLAY,
      });
      if (state.watching !== topic)
        return;
      /* With sequence numbers (SPEC §8) a gap after a reconnect is known. */
      if (resumed && typeof ack.seq === 'number' && state.lastSeq !== null && ack.seq > state.lastSeq)
        addNote(`Reconnected; ${plural(ack.seq - state.lastSeq, 'event was', 'events were')} published meanwhile.`);
      else if (resumed)
        addNote('Reconnected.');
      state.replayUntil = typeof ack.seq === 'number' && !resumed ? ack.seq : null;
    } catch (error) {
      if (state.watching !== topic)
        return;
      toast(`Cannot watch “${topic}”: ${error.message}`, 'error');
      stopWatching(false);
    }
  }

  function watch(topic) {
    $('watch-topic').value = topic;
    if (state.watching === topic)
      return;
    if (state.watching !== null)
      stopWatching(true);
    state.watching = topic;
    state.lastSeq = null;
    state.eventCount = 0;
    state.replayUntil = null;
    $('events').replaceChildren();
    renderWatch();
    if (state.wsOpen)
      subscribe(topic, false);
  }

  function stopWatching(tellServer) {
    const topic = state.watching;
    state.watching = null;
    if (tellServer && topic !== null && state.wsOpen)
      request({ type: 'unsubscribe', topic, client_id: state.clientId }).catch(() => {});
    renderWatch();
  }

  function onWatchSubmit(event) {
    event.preventDefault();
    const topic = $('watch-topic').value;
    if (!topic)
      return;
    if (state.watching === topic)
      stopWatching(true);
    else
      watch(topic);
  }

  function pushEventItem(item) {
    const list = $('events');
    list.prepend(item);
    while (list.children.length > MAX_EVENTS)
      list.lastElementChild.remove();
    renderWatch();
  }

  function addEvent(frame) {
    const item = element('li', 'event event-new');
    const meta = element('div', 'event-meta');
    const when = frame.ts ? new Date(frame.ts) : new Date();
    meta.append(element('span', 'event-time', formatClock(when, true)));
    if (typeof frame.seq === 'number') {
      meta.append(element('span', 'event-seq', `#${frame.seq}`));
      state.lastSeq = frame.seq;
    }
    if (state.replayUntil !== null && typeof frame.seq === 'number' && frame.seq <= state.replayUntil)
      meta.append(element('span', 'event-tag', 'history'));
    let text = compactJson(frame.message ? frame.message.payload : null);
    if (text.length > 4000)
      text = text.slice(0, 4000) + '…';
    item.append(meta, element('pre', 'event-payload', text));
    state.eventCount++;
    pushEventItem(item);
  }

  function addNote(text) {
    const item = element('li', 'event event-info', text);
    pushEventItem(item);
  }

  /* ---- the API key ----------------------------------------------------- */

  function lock() {
    if (state.locked)
      return;
    const rejected = state.apiKey !== null;
    state.locked = true;
    state.apiKey = null;
    state.keyGeneration++;
    storageSet(null);
    clearTimeout(state.pollTimer);
    closeSocket();
    $('key-error').hidden = !rejected;
    const dialog = $('key-dialog');
    if (!dialog.open)
      dialog.showModal();
    $('key-input').focus();
    renderStatus();
  }

  function unlock(event) {
    event.preventDefault();
    const input = $('key-input');
    if (input.value === '') {
      input.focus();
      return;
    }
    state.apiKey = input.value;
    state.keyGeneration++;
    storageSet(state.apiKey);
    input.value = '';
    state.locked = false;
    state.failures = 0;
    $('key-dialog').close();
    renderStatus();
    poll();
  }

  function forgetKey() {
    storageSet(null);
    location.reload();
  }

  /* ---- start ----------------------------------------------------------- */

  function start() {
    $('server-info').textContent = location.host;
    $('create-form').addEventListener('submit', createTopic);
    $('create-name').addEventListener('input', () => showCreateError(null));
    $('publish-form').addEventListener('submit', publish);
    $('publish-payload').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey))
        $('publish-form').requestSubmit();
    });
    $('publish-payload').addEventListener('input', (event) => event.target.removeAttribute('aria-invalid'));
    $('topics-filter').addEventListener('input', renderTopics);
    $('watch-form').addEventListener('submit', onWatchSubmit);
    $('watch-topic').addEventListener('change', renderWatch);
    $('events-clear').addEventListener('click', () => {
      $('events').replaceChildren();
      state.eventCount = 0;
      renderWatch();
    });
    $('key-form').addEventListener('submit', unlock);
    /* Nothing works without the key: Escape does not dismiss the dialog. */
    $('key-dialog').addEventListener('cancel', (event) => event.preventDefault());
    $('forget-key').addEventListener('click', forgetKey);

    makeChart();
    new ResizeObserver(resizeChart).observe($('chart'));
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
      state.chart.destroy();
      $('chart').replaceChildren();
      makeChart();
    });
    renderWatch();
    renderStatus();
    poll();
  }

  /* For tests and the console: what the chart shows. */
  window.pubsubDashboard = Object.freeze({
    series: () => ({
      time: state.xs.slice(),
      published: state.published.slice(),
      delivered: state.delivered.slice(),
    }),
  });

  start();
})();
