import { loadConfig } from '../../daemon/config.js';
import { startDaemon } from '../../daemon/daemon.js';
import { createLogger } from '../../daemon/logger.js';
import { readyAnnouncement, removeReadyFile, writeReadyFile } from '../../daemon/readiness.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand, UsageError } from '../io.js';

export const serveCommand: CliCommand = {
  name: 'serve',
  summary: 'Run the daemon: the native HTTPS/WebSocket API on 127.0.0.1 (logs as JSON lines)',
  usage: 'cardbridge serve [--config FILE] [--state-dir DIR] [--mock [--pki DIR]] [--ready-file FILE]',
  async run(args, io) {
    const { values } = parseCommandArgs(args, { config: { type: 'string' }, 'state-dir': { type: 'string' }, mock: { type: 'boolean' }, 'ready-file': { type: 'string' }, pki: { type: 'string' } });
    if (values.pki !== undefined && !values.mock) throw new UsageError('--pki is for the mock readers\' test PKI: use it with --mock');
    const config = loadConfig(values.config);
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
