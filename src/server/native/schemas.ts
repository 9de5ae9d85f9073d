/** JSON Schemas of the native API; fastify validates requests and serialises replies with them. */
export const cardTypeSchema = {
  type: 'object',
  properties: {
    kind: { type: 'string', enum: ['nhi', 'moica', 'unknown'] },
    generation: { type: 'integer', enum: [1, 2] },
    label: { type: 'string' },
  },
  required: ['kind'],
  additionalProperties: false,
} as const;

export const readerSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    cardPresent: { type: 'boolean' },
    atr: { type: ['string', 'null'] },
    card: { anyOf: [cardTypeSchema, { type: 'null' }] },
  },
  required: ['name', 'cardPresent', 'atr', 'card'],
  additionalProperties: false,
} as const;

export const statusSchema = {
  type: 'object',
  properties: {
    version: { type: 'string' },
    api: { type: 'string', const: 'v1' },
    serviceAvailable: { type: 'boolean' },
    readers: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, cardPresent: { type: 'boolean' }, card: { anyOf: [cardTypeSchema, { type: 'null' }] } },
        required: ['name', 'cardPresent', 'card'],
        additionalProperties: false,
      },
    },
  },
  required: ['version', 'api', 'serviceAvailable', 'readers'],
  additionalProperties: false,
} as const;

export const problemSchema = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string' },
    detail: { type: 'string' },
    triesLeft: { type: 'integer' },
    hint: { type: 'string' },
  },
  required: ['type', 'title', 'status', 'code', 'detail'],
} as const;
