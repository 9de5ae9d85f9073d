/** Card recognition walks the card profiles (cards/index.ts); kept here for existing importers. */
export { recognizeCard } from './index.js';
