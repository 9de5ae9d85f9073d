// Runs the example site: `CARDBRIDGE_CA=ca-bundle.pem node server.js` (see ../native-login/server.js).
import { readFileSync } from 'node:fs';
import { createSite } from './site.js';

const port = Number(process.env.PORT ?? 3000);
const caFile = process.env.CARDBRIDGE_CA;
if (!caFile) {
  console.error('Set CARDBRIDGE_CA to the CA chain (PEM) of the card certificates, e.g. the ca-bundle.pem of "cardbridge mock pki --out DIR".');
  process.exit(2);
}
const bundle = readFileSync(caFile, 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
const site = createSite({ hipkiUrl: process.env.HIPKI_URL ?? 'http://localhost:61161', trust: { roots: bundle.slice(0, 1), intermediates: bundle.slice(1) } });
site.listen(port, '127.0.0.1', () => console.log(`example site on http://localhost:${port}`));
