import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CardBridgeError } from '../../errors.js';
import { canonicalOrigin } from '../../config/origin-policy.js';
import { trustedPage } from '../shared/trusted-page.js';
import { APPROVE_CSS, APPROVE_HTML, APPROVE_JS } from './ui-assets.js';
import type { PendingRequests, Submission } from './pending.js';

/**
 * Only cardbridge's own pages may use their APIs: a relying site (even an allowed one) must
 * never answer its own consent or PIN prompt, nor read or change what the self-test page shows.
 * A change (not GET) must carry the page's Origin.
 */
export function assertFromOwnPage(request: FastifyRequest, ownOrigins: ReadonlySet<string>): void {
  const origin = request.headers.origin;
  const site = request.headers['sec-fetch-site'];
  const own = origin !== undefined ? ownOrigins.has(canonicalOrigin(origin) ?? '') : site === undefined || site === 'same-origin';
  if (!own || (request.method !== 'GET' && origin === undefined)) {
    throw new CardBridgeError('NotAllowedOrigin', 'Only cardbridge’s own window may answer its prompts');
  }
}

export function registerUiRoutes(app: FastifyInstance, pending: PendingRequests, ownOrigins: ReadonlySet<string>): void {
  const fromOwnPage = (request: FastifyRequest) => assertFromOwnPage(request, ownOrigins);

  function secretOf(request: FastifyRequest): string {
    const secret = request.headers['x-cardbridge-secret'];
    if (typeof secret !== 'string' || !/^[A-Za-z0-9_-]{20,100}$/.test(secret)) throw new CardBridgeError('InvalidInput', 'No such request (it may have expired)');
    return secret;
  }

  const idParams = { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{10,64}$' } }, required: ['id'] } as const;

  app.get('/ui/approve/:id', { schema: { params: idParams } }, async (_request, reply) => trustedPage(reply, 'text/html; charset=utf-8').send(APPROVE_HTML));
  app.get('/ui/approve.js', async (_request, reply) => trustedPage(reply, 'text/javascript; charset=utf-8').send(APPROVE_JS));
  app.get('/ui/approve.css', async (_request, reply) => trustedPage(reply, 'text/css; charset=utf-8').send(APPROVE_CSS));

  app.get('/ui/api/requests/:id', { schema: { params: idParams } }, async (request, reply) => {
    fromOwnPage(request);
    const { id } = request.params as { id: string };
    return trustedPage(reply, 'application/json').send(await pending.uiView(id, secretOf(request)));
  });

  const submitBody = {
    type: 'object',
    properties: {
      decision: { type: 'string', enum: ['allow', 'deny'] },
      choose: { type: 'string', minLength: 1, maxLength: 200 },
      pin: { type: 'string', maxLength: 16 },
      confirmLastTry: { type: 'boolean' },
      remember: { type: 'boolean' },
    },
    required: ['decision'],
    additionalProperties: false,
  } as const;
  app.post('/ui/api/requests/:id', { schema: { params: idParams, body: submitBody } }, async (request, reply) => {
    fromOwnPage(request);
    const { id } = request.params as { id: string };
    return trustedPage(reply, 'application/json').send(await pending.submit(id, secretOf(request), request.body as Submission));
  });
}
