import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { CardBridgeError, isCardBridgeError } from '../../errors.js';
import { problemOf } from '../problem.js';

export function sendProblem(reply: FastifyReply, error: CardBridgeError): FastifyReply {
  const problem = problemOf(error);
  if (error.code === 'RateLimited') reply.header('Retry-After', '1');
  return reply.code(problem.status).type('application/problem+json').send(problem);
}

/** Fastify's own failures (schema, parsing, size) in the same problem format as ours. */
function fromFastifyError(error: FastifyError): { status: number; problem: CardBridgeError } {
  if (error.validation) return { status: 400, problem: new CardBridgeError('InvalidInput', `Invalid request: ${error.message}`) };
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, problem: new CardBridgeError('InvalidInput', 'Request body too large') };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, problem: new CardBridgeError('InvalidInput', 'Unsupported content type; send application/json') };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, problem: new CardBridgeError('InvalidInput', error.message) };
    default:
      if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
        return { status: error.statusCode, problem: new CardBridgeError('InvalidInput', error.message) };
      }
      return { status: 500, problem: new CardBridgeError('TransportError', 'Internal error') };
  }
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isCardBridgeError(error)) return sendProblem(reply, error);
    const { status, problem } = fromFastifyError(error);
    if (status >= 500) request.log.error({ err: error }, 'unexpected error');
    const body = problemOf(problem);
    return reply
      .code(status)
      .type('application/problem+json')
      .send({ ...body, status });
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .type('application/problem+json')
      .send({ ...problemOf(new CardBridgeError('InvalidInput', `No such endpoint: ${request.method} ${request.url.split('?')[0]}`)), status: 404, title: 'NotFound' }),
  );
}
