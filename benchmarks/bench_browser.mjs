// Keystroke latency between JupyterLab windows, in Debian's headless Chromium: from a key
// press in window A to the character shown in the other windows' editors.
//
//   cd labextension && npm run build && npm run bench:browser [-- --keys 300 --interval-ms 50 --windows 2,3]
//
// Uses the e2e harness (labextension/e2e/harness), so it resolves playwright-core from
// labextension/node_modules. Tables go to stdout (markdown, as benchmarks/report.py),
// progress to stderr. See docs/performance.md ("JupyterLab windows") for how the figures are made.
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';

import { editorText, launchBrowser, Window } from '../labextension/e2e/harness/browser.mjs';
import { Lab, sleep } from '../labextension/e2e/harness/lab.mjs';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '300' },
    'interval-ms': { type: 'string', default: '50' },
    windows: { type: 'string', default: '2,3' },
    warmup: { type: 'string', default: '20' }
  }
});
const KEYS = Number(args.keys);
const INTERVAL_MS = Number(args['interval-ms']);
const WARMUP = Number(args.warmup);
const WINDOW_COUNTS = args.windows.split(',').map(Number);
const PREFIX = 'x = 1  # ';
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

const progress = message => process.stderr.write(`${message}\n`);

/**
 * Runs in every page before JupyterLab: timestamps (performance.timeOrigin + now, in ms
 * since the epoch) of the Yjs document updates each room websocket sends and receives,
 * and of every keydown.
 */
function installProbes() {
  const now = () => performance.timeOrigin + performance.now();
  const probe = (window.__latencyProbe = { sent: [], received: [], keydowns: [], shown: [], frames: [] });
  const isDocUpdate = data => {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? data : null;
    return bytes !== null && bytes[0] === 0 && bytes[1] === 2; // sync message, update
  };
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class ProbedWebSocket extends NativeWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      if (!String(url).includes('/api/crdtsync/room/')) return;
      // Registered before the provider's handler: the time the frame reached the page.
      this.addEventListener('message', event => {
        if (isDocUpdate(event.data)) probe.received.push(now());
      });
    }
    send(data) {
      if (String(this.url).includes('/api/crdtsync/room/') && isDocUpdate(data)) probe.sent.push(now());
      super.send(data);
    }
  };
  document.addEventListener('keydown', event => probe.keydowns.push(performance.timeOrigin + event.timeStamp), true);
}

/** In an observer window: record when cell 0's editor shows each new length. */
function watchCell(editorTextSource) {
  const editorText = new Function(`return (${editorTextSource})`)();
  const now = () => performance.timeOrigin + performance.now();
  const probe = window.__latencyProbe;
  const content = document.querySelector('.jp-NotebookPanel .jp-Notebook .jp-Cell .cm-content');
  let last = editorText(content).length;
  new MutationObserver(() => {
    const length = editorText(content).length;
    if (length === last) return;
    last = length;
    const t = now();
    probe.shown.push([t, length]);
    requestAnimationFrame(() => probe.frames.push([now(), length]));
  }).observe(content, { subtree: true, childList: true, characterData: true });
  return { length: last, visibility: document.visibilityState };
}

/** The page clock (timeOrigin + now) minus Date.now(), averaged: one clock for all pages. */
async function clockOffset(page) {
  return page.evaluate(() => {
    let sum = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) sum += performance.timeOrigin + performance.now() - Date.now();
    return sum / n;
  });
}

/**
 * CPU ticks (USER_HZ) of the whole machine (busy and total, from /proc/stat), of this
 * process with all its descendants, and of the server's process tree (server and
 * kernel): so that the table shows who used the CPU, and whether other work on the
 * machine disturbed the run. Zeros where there is no /proc.
 */
function cpuTicks(serverPid) {
  try {
    const [, ...fields] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = fields[3] + (fields[4] ?? 0);
    const parents = new Map();
    const ticks = new Map();
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        parents.set(Number(entry), Number(after[1]));
        ticks.set(Number(entry), Number(after[11]) + Number(after[12]));
      } catch {
        // the process ended meanwhile
      }
    }
    const descends = (pid, root) => {
      for (let p = pid; p > 1; p = parents.get(p) ?? 0) if (p === root) return true;
      return false;
    };
    let ours = 0;
    let server = 0;
    for (const [pid, t] of ticks) {
      if (descends(pid, process.pid)) ours += t;
      if (descends(pid, serverPid)) server += t;
    }
    return { busy: total - idle, total, ours, server };
  } catch {
    return { busy: 0, total: 0, ours: 0, server: 0 };
  }
}

/** % of one core used by the server, by the browser (and this script), by anything else. */
function cpuShare(before, after) {
  const total = after.total - before.total;
  const percent = ticks => (total > 0 ? (ticks / total) * 100 * os.cpus().length : NaN);
  const ours = percent(after.ours - before.ours);
  const server = percent(after.server - before.server);
  return { server, browser: ours - server, other: Math.max(0, percent(after.busy - before.busy) - ours) };
}

function percentile(values, p) {
  if (values.length === 0) return NaN;
  const ordered = [...values].sort((x, y) => x - y);
  return ordered[Math.max(1, Math.ceil((p / 100) * ordered.length)) - 1];
}

const ms = value => (Number.isNaN(value) ? 'n/a' : value < 100 ? value.toFixed(1) : value.toFixed(0));

/** A markdown table: the first `textColumns` columns left-aligned, numbers right. */
export function table(headers, rows, textColumns = 0) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)));
  const line = cells => `| ${cells.map((c, i) => (i < textColumns ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  return [line(headers), `| ${widths.map(w => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

/** The first value in the sorted `times` at or after `t` (times are ascending). */
function firstAtOrAfter(times, t) {
  for (const time of times) if (time >= t) return time;
  return NaN;
}

async function measure(lab, browser, windowCount) {
  const nb = lab.writeNotebook(`latency-${windowCount}.ipynb`, [PREFIX]);
  const windows = [];
  for (let i = 0; i < windowCount; i++) {
    windows.push(
      await Window.open(browser, lab, nb, { name: `w${i}`, workspace: `latency-${windowCount}-${i}`, initScript: installProbes })
    );
  }
  await lab.waitForRoom(nb, room => room.peers === windowCount, { what: `${windowCount} peers` });
  const [typist, ...observers] = windows;
  await typist.focusCell(0, 'end');
  for (let i = 0; i < WARMUP; i++) {
    await typist.page.keyboard.press(LETTERS[i % 26]);
    await sleep(INTERVAL_MS);
  }
  const base = PREFIX.length + WARMUP;
  for (const w of observers) await w.waitForCellText(0, text => text.length === base);
  const offsets = await Promise.all(windows.map(w => clockOffset(w.page)));
  const visibility = [];
  for (const w of observers) {
    const state = await w.page.evaluate(watchCell, editorText.toString());
    visibility.push(state.visibility);
  }
  const keydownsBefore = await typist.page.evaluate(() => window.__latencyProbe.keydowns.length);
  const sentBefore = await typist.page.evaluate(() => window.__latencyProbe.sent.length);
  progress(`${windowCount} windows: typing ${KEYS} keys, one every ${INTERVAL_MS} ms`);
  const cpuBefore = cpuTicks(lab.process.pid);
  const start = performance.now();
  for (let i = 0; i < KEYS; i++) {
    await typist.page.keyboard.press(LETTERS[i % 26]);
    const next = start + (i + 1) * INTERVAL_MS;
    await sleep(Math.max(0, next - performance.now()));
  }
  const finalLength = base + KEYS;
  for (const w of observers) {
    await w.waitForCellText(0, text => text.length === finalLength, { timeout: 30_000 }).catch(() => {});
  }
  const cpu = cpuShare(cpuBefore, cpuTicks(lab.process.pid));
  const shift = offset => t => t - offset;
  const typistData = await typist.page.evaluate(() => window.__latencyProbe);
  const toEpoch = shift(offsets[0]);
  const keydowns = typistData.keydowns.slice(keydownsBefore).map(toEpoch);
  const sent = typistData.sent.slice(sentBefore).map(toEpoch);
  const perObserver = [];
  for (const [j, w] of observers.entries()) {
    const data = await w.page.evaluate(() => window.__latencyProbe);
    const toObserverEpoch = shift(offsets[j + 1]);
    perObserver.push({
      received: data.received.map(toObserverEpoch),
      shown: data.shown.map(([t, length]) => [toObserverEpoch(t), length]),
      frames: data.frames.map(([t, length]) => [toObserverEpoch(t), length])
    });
  }
  const rows = { all: [], first: [], each: [], frame: [], typistSend: [], server: [], observerApply: [], lost: 0 };
  for (let i = 0; i < KEYS; i++) {
    const pressed = keydowns[i];
    const length = base + i + 1;
    const sendTime = firstAtOrAfter(sent, pressed);
    const shownTimes = perObserver.map(o => o.shown.find(([, l]) => l >= length)?.[0] ?? NaN);
    if (pressed === undefined || shownTimes.some(Number.isNaN)) {
      rows.lost++;
      continue;
    }
    const latencies = shownTimes.map(t => t - pressed);
    rows.all.push(Math.max(...latencies));
    rows.first.push(Math.min(...latencies));
    rows.each.push(...latencies);
    for (const [j, o] of perObserver.entries()) {
      const frame = o.frames.find(([, l]) => l >= length)?.[0];
      if (frame !== undefined) rows.frame.push(frame - pressed);
      const received = firstAtOrAfter(o.received, sendTime);
      rows.typistSend.push(sendTime - pressed);
      rows.server.push(received - sendTime);
      rows.observerApply.push(shownTimes[j] - received);
    }
  }
  for (const w of windows) await w.close();
  const skew = Math.max(...offsets) - Math.min(...offsets);
  return { windowCount, rows, visibility, skew, cpu };
}

async function main() {
  const lab = await Lab.start({ crdtsync: { save_delay: 1, save_max_delay: 5, eviction_delay: 10 } });
  const browser = await launchBrowser();
  const results = [];
  try {
    for (const count of WINDOW_COUNTS) results.push(await measure(lab, browser, count));
  } finally {
    await browser.close();
    await lab.dispose();
  }
  const summary = table(
    ['windows', 'keystrokes', 'lost', 'all p50 ms', 'all p95 ms', 'all p99 ms', 'all max ms', 'first p50 ms', 'each p99 ms', 'next frame p50 ms', 'server CPU %', 'browser CPU %', 'other CPU %'],
    results.map(({ windowCount, rows, cpu }) => [
      String(windowCount),
      String(KEYS),
      String(rows.lost),
      ...[50, 95, 99].map(p => ms(percentile(rows.all, p))),
      ms(Math.max(...rows.all)),
      ms(percentile(rows.first, 50)),
      ms(percentile(rows.each, 99)),
      ms(percentile(rows.frame, 50)),
      cpu.server.toFixed(0),
      cpu.browser.toFixed(0),
      cpu.other.toFixed(0)
    ])
  );
  const stages = table(
    ['windows', 'keydown to A sends p50 / p99 ms', 'A sends to B receives p50 / p99 ms', 'B receives to B shows p50 / p99 ms'],
    results.map(({ windowCount, rows }) => [
      String(windowCount),
      ...[rows.typistSend, rows.server, rows.observerApply].map(v => `${ms(percentile(v, 50))} / ${ms(percentile(v, 99))}`)
    ])
  );
  console.log(`### Key press in window A to the character shown in the other windows (${KEYS} keys, one every ${INTERVAL_MS} ms)\n`);
  console.log(summary);
  console.log('\n### Where the time goes\n');
  console.log(stages);
  const notes = results.map(r => `${r.windowCount} windows: observers ${r.visibility.join(', ')}; page clock skew ${r.skew.toFixed(2)} ms`);
  console.log(`\n${notes.join('\n')}\n${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? ''}`);
  if (results.some(r => r.rows.lost > 0)) process.exitCode = 1;
}

await main();
