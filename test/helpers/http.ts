import http from 'node:http';
import https from 'node:https';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json<T = any>(): T; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface HttpRequest {
  port: number;
  path: string;
  method?: string;
  /** Sent as given, Host included (fetch would not let a test forge Host). */
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** HTTPS with this CA (PEM) as the only trust anchor. */
  ca?: string | Buffer;
  address?: string;
}

/** One real request over a socket to a listener on this machine. */
export function request(options: HttpRequest): Promise<HttpAnswer> {
  const transport = options.ca ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(
      {
        host: options.address ?? '127.0.0.1',
        port: options.port,
        path: options.path,
        method: options.method ?? 'GET',
        headers: { host: `127.0.0.1:${options.port}`, ...options.headers },
        setHost: false,
        ...(options.ca ? { ca: options.ca, servername: 'localhost' } : {}),
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (options.body !== undefined) req.end(options.body);
    else req.end();
  });
}
