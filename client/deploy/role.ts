/**
 * The worker's execution role, when `deploy` creates it (no --role-arn): trusted by Lambda, with
 * basic execution (logs), VPC access when the function runs in subnets, and S3 access scoped to
 * the store's bucket and prefix. Existing managed roles are reconciled: what is missing is
 * attached or put, what is already right is only read, so a re-run changes nothing.
 */
import {
  AttachRolePolicyCommand,
  CreateRoleCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
  PutRolePolicyCommand,
  type IAMClient,
  type Role,
} from '@aws-sdk/client-iam';
import { DeployError } from './errors.js';

const BASIC_EXECUTION_POLICY = 'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole';
const VPC_ACCESS_POLICY = 'arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole';
const STORE_POLICY_NAME = 'cirrus-store-access';
/** Roles carrying this tag were created by `deploy`, so `deploy --remove` may delete them. */
const MANAGED_TAG = { Key: 'cirrus:managed', Value: 'true' } as const;

interface RoleSpec {
  name: string;
  vpc: boolean;
  /** S3 bucket and key prefix the workers read and write (datasets, checkpoints, the s3 channel). */
  store: { bucket: string; prefix: string } | undefined;
}

interface RoleOutcome {
  arn: string;
  /** True when the role was created now (Lambda may not be able to assume it for a while). */
  created: boolean;
  actions: string[];
}

function trustPolicy(): string {
  return JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
}

/** Read and write under the prefix, list only the prefix. */
function storePolicy(bucket: string, prefix: string): string {
  const keys = `arn:aws:s3:::${bucket}/${prefix}*`;
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: keys },
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: `arn:aws:s3:::${bucket}`, Condition: { StringLike: { 's3:prefix': [`${prefix}*`] } } },
    ],
  });
}

function awsName(err: unknown): string {
  return (err as { name?: string }).name ?? 'Error';
}

function iamFailure(what: string, err: unknown): DeployError {
  return new DeployError('DEPLOY_AWS', `IAM ${what}: ${awsName(err)}: ${(err as Error).message}`, { cause: err });
}

async function getRole(iam: IAMClient, name: string): Promise<Role | undefined> {
  try {
    return (await iam.send(new GetRoleCommand({ RoleName: name }))).Role;
  } catch (err) {
    if (awsName(err) === 'NoSuchEntityException' || awsName(err) === 'NoSuchEntity') return undefined;
    throw iamFailure(`GetRole ${name}`, err);
  }
}

function sameJson(a: string, b: string): boolean {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}

/** Creates the role or brings an existing managed one up to `spec`. */
export async function ensureRole(iam: IAMClient, spec: RoleSpec): Promise<RoleOutcome> {
  const actions: string[] = [];
  let role = await getRole(iam, spec.name);
  const created = role === undefined;
  if (!role) {
    try {
      role = (await iam.send(new CreateRoleCommand({ RoleName: spec.name, AssumeRolePolicyDocument: trustPolicy(), Description: 'Cirrus-TS worker execution role', Tags: [{ ...MANAGED_TAG }] }))).Role;
    } catch (err) {
      throw iamFailure(`CreateRole ${spec.name}`, err);
    }
    actions.push(`created role ${spec.name}`);
  } else if (!(role.Tags ?? []).some((t) => t.Key === MANAGED_TAG.Key && t.Value === MANAGED_TAG.Value)) {
    throw new DeployError('DEPLOY_OPTIONS', `role '${spec.name}' exists but was not created by cirrus deploy (no ${MANAGED_TAG.Key} tag); pass it with --role-arn ${role.Arn} to use it as it is`);
  }
  if (!role?.Arn) throw new DeployError('DEPLOY_AWS', `IAM returned no ARN for role ${spec.name}`);

  const wanted = [BASIC_EXECUTION_POLICY, ...(spec.vpc ? [VPC_ACCESS_POLICY] : [])];
  let attached: string[];
  try {
    attached = ((await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: spec.name }))).AttachedPolicies ?? []).map((p) => p.PolicyArn ?? '');
  } catch (err) {
    throw iamFailure(`ListAttachedRolePolicies ${spec.name}`, err);
  }
  for (const arn of wanted) {
    if (attached.includes(arn)) continue;
    try {
      await iam.send(new AttachRolePolicyCommand({ RoleName: spec.name, PolicyArn: arn }));
    } catch (err) {
      throw iamFailure(`AttachRolePolicy ${arn} to ${spec.name}`, err);
    }
    actions.push(`attached ${arn.slice(arn.lastIndexOf('/') + 1)}`);
  }
  if (spec.store) {
    const doc = storePolicy(spec.store.bucket, spec.store.prefix);
    let current: string | undefined;
    try {
      const got = await iam.send(new GetRolePolicyCommand({ RoleName: spec.name, PolicyName: STORE_POLICY_NAME }));
      current = got.PolicyDocument !== undefined ? decodeURIComponent(got.PolicyDocument) : undefined;
    } catch (err) {
      if (awsName(err) !== 'NoSuchEntityException' && awsName(err) !== 'NoSuchEntity') throw iamFailure(`GetRolePolicy ${STORE_POLICY_NAME}`, err);
    }
    if (current === undefined || !sameJson(current, doc)) {
      try {
        await iam.send(new PutRolePolicyCommand({ RoleName: spec.name, PolicyName: STORE_POLICY_NAME, PolicyDocument: doc }));
      } catch (err) {
        throw iamFailure(`PutRolePolicy ${STORE_POLICY_NAME}`, err);
      }
      actions.push(`granted S3 access to s3://${spec.store.bucket}/${spec.store.prefix}`);
    }
  }
  return { arn: role.Arn, created, actions };
}

/** Deletes a role `deploy` created: its policies first, as IAM requires. Absent or unmanaged roles are left alone. */
export async function removeRole(iam: IAMClient, name: string): Promise<string[]> {
  const role = await getRole(iam, name);
  if (!role) return [];
  if (!(role.Tags ?? []).some((t) => t.Key === MANAGED_TAG.Key && t.Value === MANAGED_TAG.Value)) return [`kept role ${name} (not created by cirrus deploy)`];
  try {
    for (const p of (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: name }))).AttachedPolicies ?? []) {
      await iam.send(new DetachRolePolicyCommand({ RoleName: name, PolicyArn: p.PolicyArn }));
    }
    for (const policy of (await iam.send(new ListRolePoliciesCommand({ RoleName: name }))).PolicyNames ?? []) {
      await iam.send(new DeleteRolePolicyCommand({ RoleName: name, PolicyName: policy }));
    }
    await iam.send(new DeleteRoleCommand({ RoleName: name }));
  } catch (err) {
    throw iamFailure(`removing role ${name}`, err);
  }
  return [`deleted role ${name}`];
}
