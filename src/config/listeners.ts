/** The listeners of DESIGN.md, their default ports, and who else tends to sit on those ports. */
export const NATIVE_DEFAULT_PORT = 39443;

export interface ListenerSpec {
  name: string;
  port: number;
  scheme: 'http' | 'https';
  /** The program a browser user most likely has on this port instead (vendor agents). */
  usualSuspect?: string;
}

/** DESIGN.md's listeners. */
export const DEFAULT_LISTENERS = [
  { name: 'native', port: NATIVE_DEFAULT_PORT, scheme: 'https' },
  { name: 'hipki', port: 61161, scheme: 'http', usualSuspect: 'the HiPKI Local Server (中華電信 HiPKILocalSignServer)' },
  { name: 'nhi-ws', port: 7777, scheme: 'https', usualSuspect: "NHI's card reader control (健保卡讀卡機控制軟體 / NHIICC)" },
  { name: 'nhi-http', port: 59001, scheme: 'http', usualSuspect: "NHI's newer card agent (健保卡元件)" },
  { name: 'nhi-https', port: 59002, scheme: 'https', usualSuspect: "NHI's newer card agent (健保卡元件)" },
] as const satisfies readonly ListenerSpec[];

export type ListenerName = (typeof DEFAULT_LISTENERS)[number]['name'];
