import type { CliCommand } from '../io.js';

/**
 * A subcommand as the top-level `--help` and the dispatcher see it: its name and one-line
 * summary, and how to load the rest. Each command module (and whatever it pulls in: fastify,
 * pkijs, the PC/SC addon) is imported only when that command runs or its `--help` is asked
 * for, so `cardbridge --version` and `cardbridge --help` stay as quick as Node itself.
 */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<CliCommand>;
}

/** Every subcommand, in the order `--help` lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'serve',
    summary: 'Run the daemon: the native API and the HiPKI and NHI compatibility listeners on 127.0.0.1 (logs as JSON lines)',
    load: async () => (await import('./serve.js')).serveCommand,
  },
  {
    name: 'wait',
    summary: 'Wait until the daemon answers (exit 0), or fail after --timeout seconds (for scripts and CI)',
    load: async () => (await import('./wait.js')).waitCommand,
  },
  {
    name: 'readers',
    summary: 'List card readers, whether a card is in each, its ATR and what card it is',
    load: async () => (await import('./readers.js')).readersCommand,
  },
  {
    name: 'read',
    summary: 'Read a card: "read nhi" (health insurance card data) or "read moica" (citizen certificate card and certificates)',
    load: async () => (await import('./read.js')).readCommand,
  },
  {
    name: 'sign',
    summary: 'Sign a file with a citizen certificate card (自然人憑證): PKCS#1 or CMS',
    load: async () => (await import('./sign.js')).signCommand,
  },
  {
    name: 'sites',
    summary: 'Which web sites may use cardbridge: list, allow a site (pattern), revoke a site and its consents',
    load: async () => (await import('./sites.js')).sitesCommand,
  },
  {
    name: 'browsers',
    summary: 'Browser policies for cardbridge: Chrome/Chromium/Edge may reach it from the allowed sites (Local Network Access), Firefox trusts its CA',
    load: async () => (await import('./browsers.js')).browsersCommand,
  },
  {
    name: 'certs',
    summary: 'Create, trust, check and renew the local CA and server certificate for the HTTPS listeners',
    load: async () => (await import('./certs.js')).certsCommand,
  },
  {
    name: 'crl',
    summary: 'Download and check the CRLs that cardbridge/verify uses for revocation (operators of relying sites)',
    load: async () => (await import('./crl.js')).crlCommand,
  },
  {
    name: 'doctor',
    summary: 'Check pcscd, readers, listener ports, certificate trust, hosts entry, browser policy and the reachability of NHI\'s cloud SAM, with a fix for each problem',
    load: async () => (await import('./doctor.js')).doctorCommand,
  },
  {
    name: 'trace',
    summary: 'Record the card exchange of one operation to a file for a bug report (PINs and NHI holder data removed)',
    load: async () => (await import('./trace.js')).traceCommand,
  },
  {
    name: 'demo',
    summary: 'Run the demo: the daemon with mock readers and virtual cards, plus a demo relying site',
    load: async () => (await import('./demo.js')).demoCommand,
  },
  {
    name: 'mock',
    summary: 'Mock mode tools: "mock pki --out DIR" writes the test CA chain for your back end (for serve --mock --pki DIR)',
    load: async () => (await import('./mock.js')).mockCommand,
  },
];
