// The target policy's enforcement point for every probe (SPEC §5, issue 15).
export * from './target-denied.error';
export * from './resolve-allowed';
export * from './dns-servers';
export * from './connect-checked';
export * from './cert-facts';
export * from './http-exchange';
export * from './failure';
