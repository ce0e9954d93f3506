/** Options: public types, the defaults, and validation. */
export * from './types';
export * from './defaults';
export * from './validate';
