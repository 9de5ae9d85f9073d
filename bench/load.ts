import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { RequestOptions } from 'node:https';
import { type ClientOptions, WebSocket } from 'ws';

/** Latency summary of one run, in milliseconds. */
export interface Summary {
  count: number;
  errors: number;
  firstError?: string;
  seconds: number;
  perSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function summarize(latencies: number[], errors: number, seconds: number, firstError?: string): Summary {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    count: latencies.length,
    errors,
    ...(firstError !== undefined && { firstError }),
    seconds,
    perSecond: latencies.length / seconds,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
  };
}

/** One client's way of making one request; resolves with an error text when the answer is wrong. */
export type Shot = () => Promise<string | undefined>;

/**
 * Runs `concurrency` closed-loop clients (each sends its next request when the previous answer
 * arrived) for a warm-up, then for `seconds`, and summarizes the measured part.
 */
export async function closedLoop(shots: Shot[], options: { warmupMs: number; seconds: number }): Promise<Summary> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let measuring = false;
  let stopAt = Infinity;
  const worker = async (shot: Shot) => {
    while (performance.now() < stopAt) {
      const start = performance.now();
      let problem: string | undefined;
      try {
        problem = await shot();
      } catch (e) {
        problem = (e as Error).message;
      }
      if (!measuring) continue;
      if (problem === undefined) latencies.push(performance.now() - start);
      else {
        errors++;
        firstError ??= problem;
      }
    }
  };
  const running = shots.map(worker);
  await new Promise((r) => setTimeout(r, options.warmupMs));
  measuring = true;
  const began = performance.now();
  stopAt = began + options.seconds * 1000;
  await Promise.all(running);
  return summarize(latencies, errors, (performance.now() - began) / 1000, firstError);
}

export interface HttpTarget {
  port: number;
  tls?: { ca: string };
  agent: http.Agent;
}

export function httpTarget(port: number, concurrency: number, ca?: string): HttpTarget {
  const agentOptions = { keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency };
  const agent = ca ? new https.Agent({ ...agentOptions, ca, servername: 'localhost' }) : new http.Agent(agentOptions);
  return { port, ...(ca !== undefined && { tls: { ca } }), agent };
}

/** One request over the target's keep-alive agent; resolves with status and body text. */
export function send(target: HttpTarget, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; text: string }> {
  const transport = target.tls ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(
      {
        host: '127.0.0.1',
        port: target.port,
        method,
        path,
        agent: target.agent,
        headers: { host: `127.0.0.1:${target.port}`, ...(body !== undefined && { 'content-length': String(Buffer.byteLength(body)) }), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A WebSocket that answers one text message with one text message (the NHI /echo protocol). */
export class AskingSocket {
  private waiting: ((text: string) => void) | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve?.(data.toString());
    });
  }

  static open(url: string, options: { ca: string; origin: string; host: string }): Promise<AskingSocket> {
    return new Promise((resolve, reject) => {
      const clientOptions: ClientOptions & RequestOptions = { ca: options.ca, servername: 'localhost', origin: options.origin, headers: { host: options.host } };
      const ws = new WebSocket(url, clientOptions);
      ws.once('open', () => resolve(new AskingSocket(ws)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
  }

  ask(text: string): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.ws.send(text);
    });
  }

  close(): void {
    this.ws.close();
  }
}
