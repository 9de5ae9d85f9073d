export * from './local-ca.js';
export * from './store.js';
export * from './trust.js';
