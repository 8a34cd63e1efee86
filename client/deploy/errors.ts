/** Errors of the Lambda package and of `cirrus deploy`. */
import { CirrusError } from '../../paramserver/index.js';

export type DeployErrorCode =
  | 'DEPLOY_BUILD'
  | 'DEPLOY_PACKAGE_TOO_LARGE'
  | 'DEPLOY_PACKAGE_INVALID'
  | 'DEPLOY_OPTIONS'
  | 'DEPLOY_AWS'
  | 'DEPLOY_ROLE_NOT_ASSUMABLE'
  | 'DEPLOY_TIMEOUT';

export class DeployError extends CirrusError<DeployErrorCode> {}
