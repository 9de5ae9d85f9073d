import { DEFAULT_LISTENERS } from '../../config/listeners.js';
import { SYSTEM_CONFIG_FILE, configFile, loadConfig } from '../../daemon/config.js';
import { startDaemon } from '../../daemon/daemon.js';
import { createLogger } from '../../daemon/logger.js';
import { readyAnnouncement, removeReadyFile, writeReadyFile } from '../../daemon/readiness.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand, UsageError } from '../io.js';

const LISTENER_ROLES: Record<(typeof DEFAULT_LISTENERS)[number]['name'], string> = {
  native: "cardbridge's own HTTPS/WebSocket API",
  hipki: 'HiPKI Local Server compatible (自然人憑證)',
  'nhi-ws': 'NHI card reader control, wss (健保卡)',
  'nhi-http': 'NHI newer card agent, HTTP',
  'nhi-https': 'NHI newer card agent, HTTPS',
};

export const serveCommand: CliCommand = {
  name: 'serve',
  usage: 'cardbridge serve [--config FILE] [--state-dir DIR] [--mock [--pki DIR]] [--ready-file FILE]',
  help: [
    '',
    'Listeners (each can be disabled or moved in the configuration file):',
    ...DEFAULT_LISTENERS.map((l) => `  ${l.name.padEnd(10)} ${`${l.scheme}://127.0.0.1:${l.port}`.padEnd(24)} ${LISTENER_ROLES[l.name]}`),
    '',
    'Options:',
    `  --config FILE      configuration (docs/configuration.md); default ${SYSTEM_CONFIG_FILE} if it exists, else built-in defaults`,
    '  --state-dir DIR    CA, server certificate and allow-list; default: the file\'s stateDir, $CARDBRIDGE_STATE_DIR, /var/lib/cardbridge as root, else ~/.local/state/cardbridge',
    '  --mock             virtual readers and cards instead of pcscd (for trying it without a reader)',
    '  --pki DIR          with --mock: keep the test PKI (CA and card keys) in DIR and reuse it in later runs',
    '  --ready-file FILE  write the ready line (JSON with every listener\'s URL) to FILE once listening; removed on exit',
    '',
    'Once every listener is up it prints one ready line, {"ready":true,...}; cardbridge wait waits for it.',
    '',
    'Example: cardbridge serve --mock --state-dir /tmp/cardbridge',
  ],
  async run(args, io) {
    const { values } = parseCommandArgs(args, { config: { type: 'string' }, 'state-dir': { type: 'string' }, mock: { type: 'boolean' }, 'ready-file': { type: 'string' }, pki: { type: 'string' } });
    if (values.pki !== undefined && !values.mock) throw new UsageError('--pki is for the mock readers\' test PKI: use it with --mock');
    const config = loadConfig(configFile(values.config));
    const logger = createLogger(config.logLevel);
    const daemon = await startDaemon({
      config,
      mock: values.mock ?? false,
      logger,
      ...(values['state-dir'] ? { stateDir: values['state-dir'] } : {}),
      ...(values.pki ? { testPkiDir: values.pki } : {}),
    });
    for (const l of daemon.listeners) {
      if (l.url) logger.info({ listener: l.name, url: l.url }, `${l.name} listening on ${l.url}`);
    }
    logger.info({ stateDir: daemon.stateDir, mock: values.mock ?? false }, 'cardbridge ready');
    // The one machine-readable line on stdout a script waits for (docs/operations.md, "Readiness").
    const announcement = readyAnnouncement(daemon, values.mock ?? false);
    const readyFile = values['ready-file'];
    if (readyFile) await writeReadyFile(readyFile, announcement);
    io.out(JSON.stringify(announcement));
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    logger.info('shutting down');
    if (readyFile) await removeReadyFile(readyFile);
    await daemon.stop();
    io.err('cardbridge stopped');
    return EXIT.ok;
  },
};
