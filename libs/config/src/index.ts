// Each app's environment, validated once at boot into a typed object.
export * from './env';
export * from './common';
export * from './database';
