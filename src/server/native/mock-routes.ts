import type { FastifyInstance } from 'fastify';
import { DEMO_CARD_KINDS, type DemoCardKind, type MockControl } from '../../demo/mock-control.js';
import type { RouteDoc } from './openapi.js';

/**
 * The mock readers' remote control (demo and relying-site CI only: registered when the
 * daemon runs with --mock). The same guard applies: loopback, Host, allowed origins.
 */
export function registerMockRoutes(app: FastifyInstance, control: MockControl, docs: RouteDoc[]): void {
  const reader = { type: 'object', properties: { reader: { type: 'string', minLength: 1, maxLength: 100 } }, required: ['reader'] } as const;
  const cardBody = { type: 'object', properties: { card: { type: 'string', enum: [...DEMO_CARD_KINDS] } }, required: ['card'], additionalProperties: false } as const;
  const nameBody = { type: 'object', properties: { name: { type: 'string', minLength: 1, maxLength: 100 } }, required: ['name'], additionalProperties: false } as const;

  docs.push({ method: 'get', path: '/v1/mock', summary: 'Mock mode only: the mock readers, their virtual cards and PIN tries left' });
  app.get('/v1/mock', async () => control.state());

  docs.push({ method: 'get', path: '/v1/mock/pki', summary: 'Mock mode only: the test CA chain (PEM) the virtual 自然人憑證 certificates chain to, for the relying back end to trust' });
  app.get('/v1/mock/pki', async () => control.pki());

  docs.push({ method: 'post', path: '/v1/mock/readers', summary: 'Mock mode only: plug in a reader', body: nameBody });
  app.post('/v1/mock/readers', { schema: { body: nameBody } }, async (request) => {
    control.addReader((request.body as { name: string }).name);
    return control.state();
  });

  docs.push({ method: 'delete', path: '/v1/mock/readers/{reader}', summary: 'Mock mode only: unplug a reader' });
  app.delete('/v1/mock/readers/:reader', { schema: { params: reader } }, async (request) => {
    control.removeReader((request.params as { reader: string }).reader);
    return control.state();
  });

  docs.push({ method: 'post', path: '/v1/mock/readers/{reader}/card', summary: 'Mock mode only: insert a virtual card (nhi, moica-gen1, moica-gen2)', body: cardBody });
  app.post('/v1/mock/readers/:reader/card', { schema: { params: reader, body: cardBody } }, async (request) => {
    await control.insert((request.params as { reader: string }).reader, (request.body as { card: DemoCardKind }).card);
    return control.state();
  });

  docs.push({ method: 'delete', path: '/v1/mock/readers/{reader}/card', summary: 'Mock mode only: remove the card' });
  app.delete('/v1/mock/readers/:reader/card', { schema: { params: reader } }, async (request) => {
    control.remove((request.params as { reader: string }).reader);
    return control.state();
  });

  docs.push({ method: 'post', path: '/v1/mock/readers/{reader}/card/reset-pin', summary: 'Mock mode only: give the virtual MOICA card its PIN tries back' });
  app.post('/v1/mock/readers/:reader/card/reset-pin', { schema: { params: reader } }, async (request) => {
    await control.resetPin((request.params as { reader: string }).reader);
    return control.state();
  });
}
