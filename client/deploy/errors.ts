/** Errors of the Lambda package and of `cirrus deploy`. */
export type DeployErrorCode =
  | 'DEPLOY_BUILD'
  | 'DEPLOY_PACKAGE_TOO_LARGE'
  | 'DEPLOY_PACKAGE_INVALID'
  | 'DEPLOY_OPTIONS'
  | 'DEPLOY_AWS'
  | 'DEPLOY_ROLE_NOT_ASSUMABLE'
  | 'DEPLOY_TIMEOUT';

export class DeployError extends Error {
  readonly code: DeployErrorCode;
  constructor(code: DeployErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeployError';
    this.code = code;
  }
}
