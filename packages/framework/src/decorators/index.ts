/** The public decorators and their option types. */
export { Operator } from './operator.js';
export { OnCreate, OnUpdate, OnDelete, OnResume, OnField, OnEvent, OnTimer, OnStartup, OnCleanup } from './handlers.js';
export { OnSecondary } from './secondary.js';
export { Daemon } from './daemons.js';
export { Index } from './indexes.js';
export type { HandlerDecorator } from './handlers.js';
export {
  registeredOperators,
  getOperatorOptions,
  getHandlers,
  getSecondaryHandlers,
  getDaemons,
  getIndexes,
  type OperatorClass,
} from './metadata.js';
export type * from './options.js';
export {
  Validate,
  Mutate,
  AdmissionError,
  getAdmissionHandlers,
  DEFAULT_ADMISSION_OPERATIONS,
  type AdmissionOptions,
  type AdmissionContext,
  type AdmissionOperation,
  type AdmissionUserInfo,
  type AdmissionErrorOptions,
  type ValidateResult,
  type MutateResult,
  type LabelSelector,
} from './admission.js';
