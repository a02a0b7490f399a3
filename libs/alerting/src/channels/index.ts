// Notification channels (SPEC §7): the message of a group of alerts, and each channel type's request for it.
export * from './notification';
export * from './text';
export * from './webhook';
export * from './slack';
export * from './teams';
export * from './pagerduty';
export * from './email';
export * from './format';
export * from './retry-policy';
export * from './target-policy';
