/**
 * A card that lives in software: the project's virtual NHI and MOICA cards and the generic
 * test card. The same object can sit in the in-process mock reader or, through the vpcd
 * client, in a real pcscd.
 */
export interface VirtualCard {
  readonly atr: Buffer;
  /** One command APDU in, one response APDU (data ‖ SW1 SW2) out. */
  process(command: Buffer): Buffer | Promise<Buffer>;
  /** Warm reset or power cycle: the card forgets volatile state (selection, verified PIN). */
  reset?(): void;
}
