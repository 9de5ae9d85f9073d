// Runs the example site: `CARDBRIDGE_CA=ca-bundle.pem node server.js`.
// CARDBRIDGE_CA is the CA chain to trust (PEM): in development the test PKI that
// `cardbridge mock pki --out DIR` writes (DIR/ca-bundle.pem) for `cardbridge serve --mock --pki DIR`.
import { readFileSync } from 'node:fs';
import { createSite } from './site.js';

const port = Number(process.env.PORT ?? 3000);
const caFile = process.env.CARDBRIDGE_CA;
if (!caFile) {
  console.error('Set CARDBRIDGE_CA to the CA chain (PEM) of the card certificates, e.g. the ca-bundle.pem of "cardbridge mock pki --out DIR".');
  process.exit(2);
}
const bundle = readFileSync(caFile, 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
const site = createSite({
  origin: `http://localhost:${port}`,
  bridgeUrl: process.env.CARDBRIDGE_URL ?? 'https://127.0.0.1:39443',
  // ca-bundle.pem holds the root first, then the issuing CA
  trust: { roots: bundle.slice(0, 1), intermediates: bundle.slice(1) },
});
site.listen(port, '127.0.0.1', () => console.log(`example site on http://localhost:${port}`));
