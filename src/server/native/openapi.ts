import { problemSchema } from './schemas.js';

export interface RouteDoc {
  method: 'get' | 'post' | 'delete';
  path: string;
  summary: string;
  body?: object;
  response?: object;
}

/** The OpenAPI 3.1 description of the native API, from the same schemas the routes use. */
export function buildOpenApi(version: string, port: number, routes: RouteDoc[]): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const route of routes) {
    const operation: Record<string, unknown> = {
      summary: route.summary,
      responses: {
        200: route.response ? { description: 'OK', content: { 'application/json': { schema: route.response } } } : { description: 'OK' },
        default: { description: 'An RFC 9457 problem', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
      },
    };
    if (route.body) operation.requestBody = { required: true, content: { 'application/json': { schema: route.body } } };
    (paths[route.path] ??= {})[route.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'cardbridge native API', version },
    servers: [{ url: `https://127.0.0.1:${port}` }, { url: `https://localhost:${port}` }],
    paths,
    components: {
      schemas: {
        Problem: problemSchema,
      },
    },
  };
}
