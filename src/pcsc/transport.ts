import { CardBridgeError } from '../errors.js';
import { type CommandApdu, type ResponseApdu, encodeCommand, parseResponse } from './apdu.js';

/** Moves raw bytes to a card and back: pcsclite, the mock reader and emulators all provide it. */
export type RawTransmit = (command: Buffer) => Promise<Buffer>;

/** What card drivers talk to: whole APDUs in, complete responses out. */
export interface CardTransport {
  transmit(command: CommandApdu): Promise<ResponseApdu>;
}

/** A T=0 card could in theory chain forever; a real answer never needs more than this. */
const MAX_GET_RESPONSE_ROUNDS = 256;

/**
 * Wraps a raw byte channel into a `CardTransport` that hides T=0 artefacts: `61 xx` is
 * followed by GET RESPONSE until the card is done (all chunks joined), `6C xx` resends the
 * command once with the Le the card asked for.
 */
export function createApduTransport(raw: RawTransmit): CardTransport {
  async function exchange(command: CommandApdu): Promise<ResponseApdu> {
    return parseResponse(await raw(encodeCommand(command)));
  }

  return {
    async transmit(command: CommandApdu): Promise<ResponseApdu> {
      let response = await exchange(command);
      if ((response.sw & 0xff00) === 0x6c00) {
        response = await exchange({ ...command, le: response.sw & 0xff || 256 });
      }
      const chunks: Buffer[] = [response.data];
      let rounds = 0;
      while ((response.sw & 0xff00) === 0x6100) {
        if (++rounds > MAX_GET_RESPONSE_ROUNDS) {
          throw new CardBridgeError('ProtocolError', 'Card kept answering 61 xx; gave up after 256 GET RESPONSE commands');
        }
        // GET RESPONSE is an interindustry command: CLA 00 whatever class the command used.
        response = await exchange({ cla: 0x00, ins: 0xc0, p1: 0, p2: 0, le: response.sw & 0xff || 256 });
        chunks.push(response.data);
      }
      return { data: Buffer.concat(chunks), sw: response.sw };
    },
  };
}
