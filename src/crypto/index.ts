export * from './des.js';
export * from './aes.js';
export * from './aes-cmac.js';
export * from './moica-pin-block.js';
export * from './gp-diversify.js';
export * from './scp03.js';
export * from './pkcs1.js';
