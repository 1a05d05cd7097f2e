/** The public decorators and their option types. */
export { Operator } from './operator.js';
export { OnCreate, OnUpdate, OnDelete, OnResume, OnField, OnEvent, OnTimer, OnStartup, OnCleanup } from './handlers.js';
export type { HandlerDecorator } from './handlers.js';
export { registeredOperators, getOperatorOptions, getHandlers, type OperatorClass } from './metadata.js';
export type * from './options.js';
