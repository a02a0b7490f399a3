export * from './snapshot.schema';
