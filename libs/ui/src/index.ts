// Dashboard components shared across pages (the kit's CSS comes with it through Vite).
import './theme.css';
import './components.css';

export * from './status-badge';
export * from './time';
export * from './button';
export * from './field';
export * from './card';
export * from './table';
export * from './layout';
export * from './theme';
export * from './chart';
export * from './row-trend';
