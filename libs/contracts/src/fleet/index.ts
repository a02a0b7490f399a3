export * from './snapshot.schema';
export * from './report.schema';
export * from './leader-config.schema';
export * from './leader.schema';
export * from './drift-view';
