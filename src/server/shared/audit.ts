import type { Logger } from 'pino';

export interface AuditEntry {
  origin: string;
  operation: string;
  card: string;
  reader: string;
  /** `ok` or the error code. */
  result: string;
}

/** One line per card operation a site asked for: who, what, which card, how it ended. */
export interface AuditLog {
  record(entry: AuditEntry): void;
}

export function loggerAudit(logger: Logger | undefined): AuditLog {
  return {
    record(entry) {
      logger?.info({ audit: entry }, `audit ${entry.operation} ${entry.result} for ${entry.origin}`);
    },
  };
}

/** For tests: keeps the entries. */
export function memoryAudit(): AuditLog & { entries: AuditEntry[] } {
  const entries: AuditEntry[] = [];
  return { entries, record: (entry) => entries.push(entry) };
}
