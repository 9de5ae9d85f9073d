import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CardBridgeError, asCardBridgeError } from '../../errors.js';
import type { ConsentScope, SitesStore } from '../../config/sites-store.js';
import type { CardKind, ReaderRegistry, RegistryEvent } from '../../readers/types.js';
import type { NhiService } from '../../services/nhi/nhi-service.js';
import type { MoicaService } from '../../services/moica/moica-service.js';
import type { MoicaCertificate } from '../../cards/moica/moica-card.js';
import type { PendingCardChoice, PendingKind, PendingRequests } from './pending.js';
import type { RouteDoc } from './openapi.js';
import type { AuditLog } from '../shared/audit.js';
import { createAuthTokenTbs } from '../../verify/token-format.js';

/** A card number as the window shows it: the first two and last four characters, e.g. `TP**********4321`. */
export function maskCardNumber(serialNumber: string): string {
  if (serialNumber.length <= 6) return '*'.repeat(serialNumber.length);
  return `${serialNumber.slice(0, 2)}${'*'.repeat(serialNumber.length - 6)}${serialNumber.slice(-4)}`;
}

export interface CardServices {
  nhi: NhiService;
  moica: MoicaService;
}

export interface CardRouteOptions {
  registry: ReaderRegistry;
  services: CardServices;
  pending: PendingRequests;
  sites: SitesStore;
  audit: AuditLog;
  /** Where the user's window lives, e.g. https://127.0.0.1:39443 */
  uiBase: string;
  docs: RouteDoc[];
}

const base64 = { type: 'string', pattern: '^[A-Za-z0-9+/]*={0,2}$', maxLength: 65536 } as const;
/**
 * Every card route takes an optional `reader` (a name from GET /v1/readers): only the card in
 * that reader serves, and the window names it. Without it, the first reader holding a card of
 * the right kind.
 */
const readerField = { type: 'string', minLength: 1, maxLength: 200 } as const;
const hashEnum = { type: 'string', enum: ['sha1', 'sha256', 'sha384', 'sha512'] } as const;
const pendingSchema = {
  type: 'object',
  properties: { id: { type: 'string' }, state: { type: 'string', const: 'pending' }, approveUrl: { type: 'string' }, expiresAt: { type: 'string' } },
  required: ['id', 'state', 'approveUrl', 'expiresAt'],
  additionalProperties: false,
} as const;

/** A body that tries to hand us a PIN is refused outright: PINs are typed in our window only. */
function refusePinField(body: unknown): void {
  if (body && typeof body === 'object' && 'pin' in body) {
    throw new CardBridgeError('InvalidInput', 'cardbridge never takes a PIN from a web page; the user types it in cardbridge’s own window');
  }
}

function requireOrigin(request: FastifyRequest): string {
  if (!request.callerOrigin) {
    throw new CardBridgeError('NotAllowedOrigin', 'This operation is for web pages: the request must carry an allowed Origin');
  }
  return request.callerOrigin;
}

function certificateJson(certificate: MoicaCertificate) {
  const facts = certificate.facts;
  return {
    role: facts.role,
    id: certificate.id,
    certificate: certificate.der.toString('base64'),
    subject: facts.subject,
    issuer: facts.issuer,
    holder: facts.holderName ?? null,
    idLast4: facts.idLastFour ?? null,
    serialNumber: facts.subjectSerialNumber ?? null,
    notBefore: facts.notBefore.toISOString(),
    notAfter: facts.notAfter.toISOString(),
  };
}

export function registerCardRoutes(app: FastifyInstance, options: CardRouteOptions): void {
  const { registry, services, pending, sites, audit, uiBase, docs } = options;

  // A card taken out (or its reader unplugged) while a window waits ends that request at once:
  // the window and the page say CardRemoved, and whatever card comes next gets no PIN.
  const onReaderEvent = (event: RegistryEvent) => {
    if (event.type !== 'card-removed' && event.type !== 'reader-removed') return;
    pending.failForReader(event.reader, new CardBridgeError('CardRemoved', `The card was taken out of ${event.reader} before you answered`, { hint: 'Insert the card and start again from the web page.' }));
  };
  registry.on('event', onReaderEvent);
  app.addHook('onClose', async () => {
    registry.off('event', onReaderEvent);
  });

  /** The reader holding a card of `kind`, or the error saying what is wrong, before any window opens. */
  async function locate(kind: CardKind, reader?: string): Promise<{ reader: string; cardKey: string; label: string }> {
    const found = await registry.locate(reader === undefined ? { kind } : { kind, reader });
    return { reader: found.reader, cardKey: `${found.reader}|${found.card.atr}`, label: `${found.card.label} — ${found.reader}` };
  }

  /**
   * With two or more citizen certificate cards in and no reader named, the window lists them
   * (holder, masked card number, reader) and the user chooses before typing the PIN. A card
   * that cannot be read now is not offered; fewer than two offers means no choice to make.
   */
  async function moicaChoices(): Promise<PendingCardChoice[] | undefined> {
    const readers = registry.readers().filter((r) => r.card?.type.kind === 'moica');
    if (readers.length < 2) return undefined;
    const choices: PendingCardChoice[] = [];
    for (const { name } of readers) {
      try {
        const { serialNumber } = await services.moica.cardInfo({ reader: name });
        const certificates = await services.moica.listCertificates({ reader: name });
        const holder = (certificates.find((c) => c.facts.role === 'sign') ?? certificates.find((c) => c.facts.holderName))?.facts.holderName ?? null;
        choices.push({ reader: name, holder, card: maskCardNumber(serialNumber), key: serialNumber });
      } catch {
        // not offered: the citizen chooses among the cards that answer
      }
    }
    return choices.length >= 2 ? choices : undefined;
  }

  /**
   * Runs `work` now when the site already has the user's consent for `scope`, otherwise
   * answers 202 and runs it once the user agrees in cardbridge's window.
   */
  async function withUser<T>(
    request: FastifyRequest,
    reply: FastifyReply,
    spec: { operationName: string; operation: string; kind: PendingKind; scope?: ConsentScope; cardKind: CardKind; reader?: string },
    work: (input: { pin?: string; confirmLastTry?: boolean; reader: string; serialNumber?: string }) => Promise<T>,
  ): Promise<T | FastifyReply> {
    const origin = requireOrigin(request);
    const card = await locate(spec.cardKind, spec.reader);
    const choices = spec.kind === 'pin' && spec.cardKind === 'moica' && spec.reader === undefined ? await moicaChoices() : undefined;
    // The work uses the card the window named (or the user chose there), in its reader, and no
    // other: a request whose card leaves that reader is cancelled as CardRemoved below, and a
    // chosen card is also held to its number, so a card swapped in never gets the PIN.
    const audited = async (input: { pin?: string; confirmLastTry?: boolean; chosen?: PendingCardChoice }) => {
      const { chosen, ...answer } = input;
      const reader = chosen?.reader ?? card.reader;
      try {
        const result = await work({ ...answer, reader, ...(chosen && { serialNumber: chosen.key }) });
        audit.record({ origin, operation: spec.operationName, card: spec.cardKind, reader, result: 'ok' });
        return result;
      } catch (e) {
        audit.record({ origin, operation: spec.operationName, card: spec.cardKind, reader, result: asCardBridgeError(e).code });
        throw e;
      }
    };
    if (spec.kind === 'consent' && spec.scope && sites.hasConsent(origin, spec.scope)) return audited({});
    const created = pending.create({
      origin,
      kind: spec.kind,
      operation: spec.operation,
      ...(choices
        ? { card: '請選擇卡片 · Choose a card', cardKey: `choice|${choices.map((c) => c.reader).join('|')}`, choices }
        : { card: card.label, cardKey: card.cardKey, reader: card.reader }),
      // The window shows (and enforces) the card's tries as every path has seen them.
      ...(spec.kind === 'pin' && spec.cardKind === 'moica' && { pinStatus: (reader: string) => services.moica.pinStatus({ reader }) }),
      ...(spec.kind === 'consent' && { rememberDays: sites.consentDays }),
      run: async (input) => {
        // "Allow this time" reads once; only "allow and remember" is written down.
        if (spec.kind === 'consent' && spec.scope && input.remember) await sites.grant(origin, spec.scope);
        return audited(input);
      },
    });
    return reply.code(202).send({
      id: created.id,
      state: 'pending',
      approveUrl: `${uiBase}/ui/approve/${created.id}#${created.secret}`,
      expiresAt: created.expiresAt.toISOString(),
    });
  }

  // ——— NHI ———
  const nhiBody = { type: 'object', properties: { reader: readerField }, additionalProperties: false } as const;
  docs.push({ method: 'post', path: '/v1/nhi/basic', summary: 'NHI card holder data (after the user consents once per site)', body: nhiBody });
  app.post('/v1/nhi/basic', { preValidation: async (r) => refusePinField(r.body), schema: { body: nhiBody, response: { 202: pendingSchema } } }, async (request, reply) => {
    const body = (request.body ?? {}) as { reader?: string };
    return withUser(
      request,
      reply,
      { operationName: 'nhi.basic', operation: 'Read the holder data on your health insurance card (讀取健保卡資料)', kind: 'consent', scope: 'nhi.read', cardKind: 'nhi', reader: body.reader },
      async ({ reader }) => {
        const { reader: _reader, cardTermination: _flag, ...basic } = await services.nhi.readBasic({ reader });
        return basic;
      },
    );
  });

  const hsignBody = {
    type: 'object',
    properties: { random: { type: 'string', pattern: '^0001[0-9]{16}$' }, reader: readerField },
    additionalProperties: false,
  } as const;
  docs.push({ method: 'post', path: '/v1/nhi/hsign', summary: 'NHI H_Sign through the cloud SAM (consent as for the holder data)', body: hsignBody });
  app.post('/v1/nhi/hsign', { preValidation: async (r) => refusePinField(r.body), schema: { body: hsignBody, response: { 202: pendingSchema } } }, async (request, reply) => {
    const body = (request.body ?? {}) as { random?: string; reader?: string };
    const random = body.random ?? `0001${services.nhi.getRandom()}`;
    return withUser(
      request,
      reply,
      { operationName: 'nhi.hsign', operation: 'Sign in with your health insurance card (健保卡登入)', kind: 'consent', scope: 'nhi.read', cardKind: 'nhi', reader: body.reader },
      async ({ reader }) => ({ random, signature: (await services.nhi.hSign(random, { reader })).toString('base64') }),
    );
  });

  // ——— MOICA ———
  const certificatesQuery = { type: 'object', properties: { reader: readerField }, additionalProperties: false } as const;
  docs.push({ method: 'get', path: '/v1/moica/certificates', summary: 'Certificates on the citizen certificate card (after consent); ?reader= names the reader' });
  app.get('/v1/moica/certificates', { schema: { querystring: certificatesQuery, response: { 202: pendingSchema } } }, async (request, reply) => {
    const { reader: named } = request.query as { reader?: string };
    return withUser(
      request,
      reply,
      {
        operationName: 'moica.certificates',
        operation: 'Read the certificates on your citizen certificate card (讀取自然人憑證)',
        kind: 'consent',
        scope: 'moica.certificates',
        cardKind: 'moica',
        reader: named,
      },
      async ({ reader }) => ({ certificates: (await services.moica.listCertificates({ reader })).map(certificateJson) }),
    );
  });

  const signBody = {
    type: 'object',
    properties: {
      data: base64,
      digest: base64,
      hash: hashEnum,
      format: { type: 'string', enum: ['pkcs1', 'cms'] },
      detached: { type: 'boolean' },
      reader: readerField,
    },
    oneOf: [{ required: ['data'] }, { required: ['digest'] }],
    additionalProperties: false,
  } as const;
  docs.push({ method: 'post', path: '/v1/moica/sign', summary: 'Sign data or a digest; the user types the PIN in cardbridge’s window', body: signBody });
  app.post('/v1/moica/sign', { preValidation: async (r) => refusePinField(r.body), schema: { body: signBody, response: { 202: pendingSchema } } }, async (request, reply) => {
    const body = request.body as { data?: string; digest?: string; hash?: 'sha1' | 'sha256' | 'sha384' | 'sha512'; format?: 'pkcs1' | 'cms'; detached?: boolean; reader?: string };
    const format = body.format ?? 'pkcs1';
    const hash = body.hash ?? 'sha256';
    const what = body.data !== undefined ? `${Buffer.from(body.data, 'base64').length} bytes of data` : 'a digest';
    return withUser(
      request,
      reply,
      { operationName: 'moica.sign', operation: `Sign ${what} (${format.toUpperCase()}, ${hash.toUpperCase()}) with your citizen certificate (自然人憑證簽章)`, kind: 'pin', cardKind: 'moica', reader: body.reader },
      async ({ pin, confirmLastTry, reader, serialNumber }) => {
        const signed = await services.moica.sign(
          {
            reader,
            ...(serialNumber !== undefined && { serialNumber }),
            ...(body.data !== undefined ? { data: Buffer.from(body.data, 'base64') } : { digest: Buffer.from(body.digest!, 'base64') }),
            hash,
            format,
            ...(body.detached !== undefined && { detached: body.detached }),
          },
          pin!,
          { confirmLastTry: confirmLastTry === true },
        );
        return { format: signed.format, hash: signed.hash, signature: signed.signature.toString('base64'), certificate: signed.certificate.toString('base64') };
      },
    );
  });

  const authBody = {
    type: 'object',
    properties: { nonce: { type: 'string', minLength: 32, maxLength: 128 }, reader: readerField },
    required: ['nonce'],
    additionalProperties: false,
  } as const;
  docs.push({ method: 'post', path: '/v1/moica/authenticate', summary: 'Origin-bound login token signed by the card; the user types the PIN in cardbridge’s window', body: authBody });
  app.post('/v1/moica/authenticate', { preValidation: async (r) => refusePinField(r.body), schema: { body: authBody, response: { 202: pendingSchema } } }, async (request, reply) => {
    const { nonce, reader: named } = request.body as { nonce: string; reader?: string };
    const origin = requireOrigin(request);
    return withUser(
      request,
      reply,
      { operationName: 'moica.authenticate', operation: `Log in to ${origin} with your citizen certificate (自然人憑證登入)`, kind: 'pin', cardKind: 'moica', reader: named },
      async ({ pin, confirmLastTry, reader, serialNumber }) => {
        // The verifier's own definition of what is signed, so both sides can never drift apart.
        const tbs = createAuthTokenTbs(origin, nonce);
        const signed = await services.moica.sign({ reader, ...(serialNumber !== undefined && { serialNumber }), digest: createHash('sha256').update(tbs).digest(), hash: 'sha256', format: 'pkcs1' }, pin!, { confirmLastTry: confirmLastTry === true });
        return {
          token: {
            format: 'cardbridge-auth-token',
            version: 1,
            algorithm: 'RS256',
            certificate: signed.certificate.toString('base64'),
            signature: signed.signature.toString('base64'),
          },
        };
      },
    );
  });

  // ——— the page collects results ———
  const idParams = { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{10,64}$' } }, required: ['id'] } as const;
  const waitQuery = { type: 'object', properties: { wait: { type: 'integer', minimum: 0, maximum: 25 } }, additionalProperties: false } as const;
  docs.push({ method: 'get', path: '/v1/requests/{id}', summary: 'A pending request’s state and result; ?wait=N long-polls up to N (≤ 25) seconds' });
  app.get('/v1/requests/:id', { schema: { params: idParams, querystring: waitQuery } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const { wait } = request.query as { wait?: number };
    // The open long poll is the page's heartbeat: when its connection drops (the browser went
    // away), the wait ends and an unanswered request is soon cancelled, freeing the card.
    const connection = new AbortController();
    reply.raw.once('close', () => connection.abort());
    return pending.wait(id, requireOrigin(request), (wait ?? 0) * 1000, connection.signal);
  });
  docs.push({ method: 'delete', path: '/v1/requests/{id}', summary: 'Cancel a pending request' });
  app.delete('/v1/requests/:id', { schema: { params: idParams } }, async (request) => {
    const { id } = request.params as { id: string };
    return pending.cancel(id, requireOrigin(request));
  });
}

