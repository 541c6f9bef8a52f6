// Loads a picojoule HTML report in headless Chromium and checks it as a reader would see it:
// the page loads with no console error or uncaught exception, makes no request besides its own
// file, every table has the rows the JSON report beside it says, the sort script works, and a
// screenshot is not blank. Talks to Chromium over the DevTools protocol on a pipe
// (--remote-debugging-pipe): no npm package, no network port.
//
//   node tests/browser/check.mjs run|sweep|compare DIR       # DIR/report.html + its JSON
//   node tests/browser/check.mjs page FILE.html               # load checks only
//
// Exit code 0 when every check passes, 1 with the failures on stderr otherwise. The screenshot
// is left beside the report as report.png (for `page`, in the temporary folder).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';

const [kind, target] = process.argv.slice(2);
if (!['run', 'sweep', 'compare', 'page'].includes(kind) || !target) {
  console.error('usage: check.mjs run|sweep|compare DIR | check.mjs page FILE.html');
  process.exit(2);
}
const page = kind === 'page' ? resolve(target) : resolve(target, 'report.html');
const shot = kind === 'page' ? join(tmpdir(), 'picojoule-page.png') : join(dirname(page), 'report.png');
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const failures = [];
const fail = (m) => failures.push(m);

// Expected rows per table id, from the JSON the same command wrote.
function expectedRows() {
  if (kind === 'page') return {};
  const dir = resolve(target);
  const want = {};
  if (kind === 'run') {
    const r = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    want.summary = r.runs.length;
    want.unpriced = r.runs.reduce((n, run) => n + run.unpriced.length, 0);
    r.runs.forEach((run, i) => {
      want[`layers-${i + 1}`] = run.layers.length;
      want[`actions-${i + 1}`] = Object.keys(run.energy_by_action).length;
      want[`memory-${i + 1}`] = Object.keys(run.memory_range.by_class).length;
    });
    if (r.groups) want.groups = r.groups.length;
    if (r.group_differences) want.differences = r.group_differences.length;
  } else if (kind === 'sweep') {
    const r = JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8'));
    want.sweep = Math.min(r.rows.length, 2000);
  } else {
    const r = JSON.parse(readFileSync(join(dir, 'compare.json'), 'utf8'));
    want.compare = r.rows.length;
  }
  return want;
}

// The first cell of each summary row is the run's label, as text: HTML in a label is escaped.
function expectedLabels() {
  if (kind !== 'run') return null;
  const r = JSON.parse(readFileSync(join(resolve(target), 'report.json'), 'utf8'));
  return r.runs.map((run) => run.label);
}

// --- DevTools protocol over the pipe: JSON messages separated by NUL bytes. -------------------
const profile = mkdtempSync(join(tmpdir(), 'picojoule-browser-'));
const proc = spawn(
  chromium,
  [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-extensions',
    '--hide-scrollbars',
    '--remote-debugging-pipe',
    `--user-data-dir=${profile}`,
    '--window-size=1280,900',
    'about:blank',
  ],
  { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
);
let stderr = '';
proc.stderr.on('data', (d) => { stderr += d; });
const toBrowser = proc.stdio[3];
const fromBrowser = proc.stdio[4];
let nextId = 1;
const pending = new Map();
const listeners = [];
let buf = Buffer.alloc(0);
fromBrowser.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  let end;
  while ((end = buf.indexOf(0)) >= 0) {
    const msg = JSON.parse(buf.subarray(0, end).toString('utf8'));
    buf = buf.subarray(end + 1);
    if (msg.id && pending.has(msg.id)) {
      const { ok, err } = pending.get(msg.id);
      pending.delete(msg.id);
      msg.error ? err(new Error(`${msg.error.message} (${JSON.stringify(msg.error.data || '')})`)) : ok(msg.result);
    } else if (msg.method) {
      listeners.forEach((l) => l(msg));
    }
  }
});
function send(method, params = {}, sessionId) {
  const id = nextId++;
  const msg = { id, method, params };
  if (sessionId) msg.sessionId = sessionId;
  toBrowser.write(JSON.stringify(msg) + '\0');
  return new Promise((ok, err) => pending.set(id, { ok, err }));
}
function waitFor(pred, ms, what) {
  return new Promise((ok, err) => {
    const t = setTimeout(() => err(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    listeners.push((m) => { if (pred(m)) { clearTimeout(t); ok(m); } });
  });
}
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// --- PNG: decode 8-bit RGB(A) to count colours. ----------------------------------------------
function pngStats(png) {
  if (png.readUInt32BE(12) !== 0x49484452) throw new Error('not a PNG');
  const w = png.readUInt32BE(16), h = png.readUInt32BE(20);
  const depth = png[24], ctype = png[25];
  if (depth !== 8 || (ctype !== 2 && ctype !== 6)) throw new Error(`PNG type ${ctype}/${depth}`);
  const bpp = ctype === 6 ? 4 : 3;
  const idat = [];
  for (let p = 8; p < png.length;) {
    const len = png.readUInt32BE(p), type = png.toString('ascii', p + 4, p + 8);
    if (type === 'IDAT') idat.push(png.subarray(p + 8, p + 8 + len));
    p += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = w * bpp;
  const img = Buffer.alloc(h * stride);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? img[y * stride + x - bpp] : 0;
      const b = y > 0 ? img[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? img[(y - 1) * stride + x - bpp] : 0;
      let v = src[x];
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      img[y * stride + x] = v & 255;
    }
  }
  const colours = new Set();
  let notWhite = 0;
  for (let i = 0; i < img.length; i += bpp) {
    const [r, g, b] = [img[i], img[i + 1], img[i + 2]];
    colours.add((r << 16) | (g << 8) | b);
    if (r < 240 || g < 240 || b < 240) notWhite++;
  }
  return { w, h, colours: colours.size, inked: notWhite / (w * h) };
}

async function main() {
  const want = expectedRows();
  const labels = expectedLabels();
  const url = pathToFileURL(page).href;
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  const requests = [];
  const problems = [];
  listeners.push((m) => {
    if (m.sessionId !== sessionId) return;
    const p = m.params;
    if (m.method === 'Network.requestWillBeSent') requests.push(p.request.url);
    if (m.method === 'Runtime.exceptionThrown') {
      problems.push(`uncaught exception: ${p.exceptionDetails.exception?.description || p.exceptionDetails.text}`);
    }
    if (m.method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'assert')) {
      problems.push(`console.${p.type}: ${p.args.map((a) => a.value ?? a.description).join(' ')}`);
    }
    if (m.method === 'Log.entryAdded' && p.entry.level === 'error') {
      problems.push(`console error (${p.entry.source}): ${p.entry.text} ${p.entry.url || ''}`.trim());
    }
  });
  for (const d of ['Page', 'Runtime', 'Log', 'Network']) await send(`${d}.enable`, {}, sessionId);
  const loaded = waitFor((m) => m.sessionId === sessionId && m.method === 'Page.loadEventFired', 30000, 'the load event');
  const nav = await send('Page.navigate', { url }, sessionId);
  if (nav.errorText) fail(`navigation failed: ${nav.errorText}`);
  await loaded;
  await sleep(500); // late console messages and requests
  const evaluate = async (expr) => {
    const r = await send('Runtime.evaluate', { expression: expr, returnByValue: true }, sessionId);
    if (r.exceptionDetails) throw new Error(`evaluating ${expr}: ${r.exceptionDetails.text}`);
    return r.result.value;
  };
  const dom = await evaluate(`(() => {
    const tables = {};
    document.querySelectorAll('table').forEach((t) => { tables[t.id] = t.tBodies[0] ? t.tBodies[0].rows.length : 0; });
    const summary = document.getElementById('summary');
    const labels = summary ? Array.from(summary.tBodies[0].rows).map((r) => r.cells[0].textContent) : null;
    return { title: document.title, tables, labels, svgs: document.querySelectorAll('figure svg').length,
             height: document.documentElement.scrollHeight,
             scripts: document.querySelectorAll('script[src], link[href], img[src], iframe').length };
  })()`);
  for (const [id, n] of Object.entries(want)) {
    if (dom.tables[id] === undefined) fail(`table #${id} is missing (tables: ${Object.keys(dom.tables).join(', ')})`);
    else if (dom.tables[id] !== n) fail(`table #${id} has ${dom.tables[id]} rows, the JSON report says ${n}`);
  }
  if (labels && JSON.stringify(dom.labels) !== JSON.stringify(labels)) {
    fail(`summary labels ${JSON.stringify(dom.labels)} differ from the report's ${JSON.stringify(labels)}`);
  }
  if (kind !== 'page' && dom.svgs < 1) fail('no inline SVG plot');
  if (dom.scripts > 0) fail(`${dom.scripts} elements load external resources`);
  // The sort script: a click on the second header sorts by it, a second click reverses.
  if (kind !== 'page') {
    const sorted = await evaluate(`(() => {
      const t = document.querySelector('table.sortable');
      const th = t.tHead.rows[0].cells[t.tHead.rows[0].cells.length > 1 ? 1 : 0];
      th.click();
      const first = th.getAttribute('aria-sort');
      th.click();
      return [first, th.getAttribute('aria-sort')];
    })()`);
    if (sorted[0] !== 'ascending' || sorted[1] !== 'descending') fail(`sorting a table gave ${sorted}`);
  }
  const own = requests.filter((u) => u !== url);
  if (own.length) fail(`requests besides the page: ${own.join(', ')}`);
  problems.forEach(fail);
  // Screenshot of the whole page (up to 6000 pixels tall).
  const height = Math.min(Math.max(dom.height, 600), 6000);
  await send('Emulation.setDeviceMetricsOverride', { width: 1280, height, deviceScaleFactor: 1, mobile: false }, sessionId);
  const { data } = await send('Page.captureScreenshot', { format: 'png' }, sessionId);
  const png = Buffer.from(data, 'base64');
  writeFileSync(shot, png);
  const s = pngStats(png);
  if (s.colours < 16 || s.inked < 0.01) fail(`screenshot looks blank: ${s.colours} colours, ${(100 * s.inked).toFixed(2)}% inked`);
  console.log(`${kind} ${page}: ${JSON.stringify(dom.tables)}, ${dom.svgs} plots, ${requests.length} request(s), screenshot ${s.w}x${s.h} ${s.colours} colours ${(100 * s.inked).toFixed(1)}% inked`);
}

const killer = setTimeout(() => { fail('timed out after 90 s'); finish(); }, 90000);
function finish() {
  clearTimeout(killer);
  try { proc.kill('SIGKILL'); } catch {}
  try { rmSync(profile, { recursive: true, force: true }); } catch {}
  if (failures.length) {
    console.error(`FAIL ${page}:\n  ${failures.join('\n  ')}`);
    if (process.env.VERBOSE) console.error(stderr);
    process.exit(1);
  }
  process.exit(0);
}
main().catch((e) => fail(`${e.message}\n${stderr.slice(-2000)}`)).finally(finish);
