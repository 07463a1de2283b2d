// BullMQ (Node) side of the benchmark: one scenario per run, one JSON line on stdout.
// Usage: node bullmq_bench.mjs --url redis://127.0.0.1:PORT --scenario NAME --jobs N
//        [--concurrency C] [--start EPOCH_S] [--queue NAME]
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { performance } from 'node:perf_hooks';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, cur, i, all) => (i % 2 === 0 ? [...acc, [cur.replace(/^--/, ''), all[i + 1]]] : acc), []),
);
const url = new URL(args.url);
const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
const queueName = args.queue || 'bench';
const jobs = Number(args.jobs || 10000);
const concurrency = Number(args.concurrency || 100);
const payload = { i: 0, pad: 'x'.repeat(Number(args.payload || 0)) };

const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const now = () => performance.now() / 1000;
const out = (o) => { console.log(JSON.stringify(o)); };
const sleepUntil = async (epochS) => { const ms = epochS * 1000 - Date.now(); if (ms > 0) await new Promise((r) => setTimeout(r, ms)); };
const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

async function enqueueSingle() {
  const q = new Queue(queueName, { connection });
  await q.waitUntilReady();
  const c0 = cpu(); const t0 = now();
  for (let i = 0; i < jobs; i++) await q.add('noop', { ...payload, i });
  const wall = now() - t0; const c = cpu() - c0;
  await q.close();
  out({ jobs_per_s: jobs / wall, cpu_us_per_job: (c / jobs) * 1e6 });
}

async function enqueueConcurrent() {
  const q = new Queue(queueName, { connection });
  await q.waitUntilReady();
  const producers = Number(args.producers || 100);
  const per = Math.ceil(jobs / producers);
  const c0 = cpu(); const t0 = now();
  await Promise.all(Array.from({ length: producers }, async (_, p) => {
    for (let i = 0; i < per; i++) await q.add('noop', { ...payload, i: p * per + i });
  }));
  const wall = now() - t0; const c = cpu() - c0;
  await q.close();
  out({ jobs_per_s: (per * producers) / wall, cpu_us_per_job: (c / (per * producers)) * 1e6 });
}

async function enqueueBulk() {
  const q = new Queue(queueName, { connection });
  await q.waitUntilReady();
  const c0 = cpu(); const t0 = now();
  for (let s = 0; s < jobs; s += 1000) {
    const batch = [];
    for (let i = s; i < Math.min(jobs, s + 1000); i++) batch.push({ name: 'noop', data: { ...payload, i } });
    await q.addBulk(batch);
  }
  const wall = now() - t0; const c = cpu() - c0;
  await q.close();
  out({ jobs_per_s: jobs / wall, cpu_us_per_job: (c / jobs) * 1e6 });
}

async function fill() {
  const q = new Queue(queueName, { connection });
  for (let s = 0; s < jobs; s += 1000) {
    const batch = [];
    for (let i = s; i < Math.min(jobs, s + 1000); i++) batch.push({ name: 'noop', data: { ...payload, i } });
    await q.addBulk(batch);
  }
  await q.close();
  out({ filled: jobs });
}

async function drain() {
  // drains until the queue is empty; with --start, waits for that moment first (multi-process)
  const q = new Queue(queueName, { connection });
  await q.waitUntilReady();
  let done = 0;
  const worker = new Worker(queueName, async () => null, { connection, concurrency, autorun: false });
  worker.on('completed', () => { done += 1; });
  if (args.start) await sleepUntil(Number(args.start));
  const c0 = cpu(); const t0 = now(); const startedAt = Date.now() / 1000;
  worker.run();
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    const counts = await q.getJobCounts('waiting', 'active', 'prioritized', 'wait');
    if (counts.waiting + counts.active + (counts.prioritized || 0) === 0) break;
  }
  const wall = now() - t0; const c = cpu() - c0;
  await worker.close(); await q.close();
  out({ jobs_per_s: done / wall, cpu_us_per_job: (c / Math.max(done, 1)) * 1e6, done, started: startedAt, ended: Date.now() / 1000 });
}

async function latency() {
  // one job every 10 ms to an idle worker; latency = handler start - add() returned
  const q = new Queue(queueName, { connection });
  const returned = new Map(); const started = new Map();
  const worker = new Worker(queueName, async (job) => { started.set(job.data.i, now()); return null; },
    { connection, concurrency: 10 });
  await worker.waitUntilReady(); await q.waitUntilReady();
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < jobs; i++) {
    await q.add('noop', { ...payload, i });
    returned.set(i, now());
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 300));
  await worker.close(); await q.close();
  const lat = [...returned].filter(([i]) => started.has(i)).map(([i, t]) => Math.max(0, (started.get(i) - t) * 1000));
  out({ p50_ms: quantile(lat, 0.5), p99_ms: quantile(lat, 0.99), samples: lat.length });
}

async function memory() {
  // bytes of Redis memory per waiting job (payload of --payload bytes) and per completed job
  const q = new Queue(queueName, { connection });
  await q.waitUntilReady();
  const client = new IORedis(connection);
  const used = async () => Number((await client.info('memory')).match(/used_memory:(\d+)/)[1]);
  const before = await used();
  for (let s = 0; s < jobs; s += 1000) {
    const batch = [];
    for (let i = s; i < Math.min(jobs, s + 1000); i++) batch.push({ name: 'noop', data: { ...payload, i } });
    await q.addBulk(batch);
  }
  const waiting = await used();
  let done = 0;
  const worker = new Worker(queueName, async () => null, { connection, concurrency: 100 });
  worker.on('completed', () => { done += 1; });
  while (done < jobs) await new Promise((r) => setTimeout(r, 50));
  await worker.close();
  await new Promise((r) => setTimeout(r, 200));
  const completed = await used();
  await q.close(); client.disconnect();
  out({ waiting_bytes_per_job: (waiting - before) / jobs, completed_bytes_per_job: (completed - before) / jobs });
}

const scenarios = { 'enqueue-single': enqueueSingle, 'enqueue-concurrent': enqueueConcurrent, 'enqueue-bulk': enqueueBulk, fill, drain, latency, memory };
const fn = scenarios[args.scenario];
if (!fn) { console.error(`unknown scenario ${args.scenario}`); process.exit(2); }
fn().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
