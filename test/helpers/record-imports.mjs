// `node --import ./test/helpers/record-imports.mjs …` with CARDBRIDGE_RECORD_IMPORTS=FILE:
// appends the URL of every module Node loads through the ES module loader to FILE, one a line.
// Tests use it to prove which modules a command loads (e.g. that --version loads no fastify).
import { register } from 'node:module';

const file = process.env.CARDBRIDGE_RECORD_IMPORTS;
if (!file) throw new Error('record-imports.mjs needs CARDBRIDGE_RECORD_IMPORTS=FILE');
register('./record-imports-hooks.mjs', import.meta.url, { data: { file } });
