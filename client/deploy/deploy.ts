/**
 * `cirrus deploy`: puts the worker package on AWS Lambda with one command, the way PyWren and
 * Lithops deploy their runtimes. Steps, each reported as it happens:
 *
 *   build the package (refused over Lambda's limits) -> the execution role (given, or created and
 *   reconciled) -> create the function (retried while a new role propagates) or update its code
 *   and configuration where they differ -> wait until it is Active and its update Successful ->
 *   publish a version -> point the alias at it.
 *
 * A re-run with the same package and settings only reads: the code is compared by sha256, the
 * configuration field by field, the alias by version. `--remove` deletes the function (its
 * versions and aliases go with it) and the role if deploy created it.
 */
import { IAMClient } from '@aws-sdk/client-iam';
import {
  CreateAliasCommand,
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetAliasCommand,
  GetFunctionCommand,
  LambdaClient,
  PublishVersionCommand,
  UpdateAliasCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  type FunctionConfiguration,
} from '@aws-sdk/client-lambda';
import { rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { DeployError } from './errors.js';
import { awsName, failure, retryWhileRoleNotAssumable, waitUntilReady, type Waits } from './lambda-wait.js';
import { buildWorkerPackage, checkPackageLimits, NODE_RUNTIMES, type WorkerPackage } from './package.js';
import { probePackage } from './emulator/probe.js';
import { ensureRole, removeRole } from './role.js';

const deployOptionsSchema = z
  .object({
    functionName: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, { message: 'expected a function name of 1-64 letters, digits, - or _' }).default('cirrus-worker'),
    memoryMb: z.number().int().min(128, { message: "expected at least 128 MB (Lambda's minimum)" }).max(10_240, { message: "expected at most 10240 MB (Lambda's maximum)" }).default(2048),
    timeoutS: z.number().int().min(1, { message: 'expected at least 1 s' }).max(900, { message: "expected at most 900 s (Lambda's maximum)" }).default(900),
    arch: z.enum(['x86_64', 'arm64']).default('x86_64'),
    runtime: z.enum(NODE_RUNTIMES).default('nodejs20.x'),
    roleArn: z.string().regex(/^arn:aws[a-zA-Z-]*:iam::\d{12}:role\/.+$/, { message: 'expected an IAM role ARN such as arn:aws:iam::123456789012:role/cirrus-worker' }).optional(),
    subnets: z.array(z.string().min(1)).default([]),
    securityGroups: z.array(z.string().min(1)).default([]),
    /** s3://bucket/prefix the workers use: the created role gets access to exactly that. */
    store: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, { message: "expected an S3 URL such as 's3://my-bucket/cirrus/'" }).optional(),
    alias: z.string().regex(/^(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}$/, { message: 'expected an alias name (letters, digits, - or _, not only digits)' }).default('live'),
    region: z.string().min(1).optional(),
    endpointUrl: z.url().optional(),
    /** IAM's endpoint; default: endpointUrl (one stand-in serves both), else AWS's. */
    iamEndpointUrl: z.url().optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if ((o.subnets.length > 0) !== (o.securityGroups.length > 0)) ctx.addIssue({ code: 'custom', path: ['securityGroups'], message: 'give --subnets and --security-groups together (a function in a VPC needs both)' });
  });

export type DeployOptionsInput = z.input<typeof deployOptionsSchema>;
type DeploySettings = z.infer<typeof deployOptionsSchema>;

export interface DeployHooks {
  /** One line per step as it completes (the CLI prints them). */
  onStep?: (line: string) => void;
  /** A package built already (tests and benches reuse one). */
  package?: WorkerPackage;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  waits?: Partial<Waits>;
}

export interface DeployResult {
  functionName: string;
  functionArn: string;
  aliasArn: string;
  version: string;
  roleArn: string;
  sha256: string;
  zippedBytes: number;
  unzippedBytes: number;
  /** What changed; empty when the deployment was already up to date. */
  actions: string[];
}

/** Option names as the CLI spells them (errors name what the user typed). */
const CLI_FLAGS: Record<string, string> = { functionName: '--function', memoryMb: '--memory', timeoutS: '--timeout' };

export function parseDeployOptions(input: unknown): DeploySettings {
  const r = deployOptionsSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const key = String(issue.path[0] ?? '');
  const field = key ? (CLI_FLAGS[key] ?? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`) : 'options';
  throw new DeployError('DEPLOY_OPTIONS', `${field}: ${issue.code === 'unrecognized_keys' ? `unknown option(s) ${issue.keys.join(', ')}` : issue.message}`);
}

function clients(s: DeploySettings, hooks: DeployHooks): { lambda: LambdaClient; iam: IAMClient } {
  const creds = hooks.credentials ? { credentials: hooks.credentials } : {};
  const lambda = new LambdaClient({ ...(s.region ? { region: s.region } : {}), ...(s.endpointUrl ? { endpoint: s.endpointUrl } : {}), ...creds });
  const iamEndpoint = s.iamEndpointUrl ?? s.endpointUrl;
  // IAM is global; its requests are signed for us-east-1.
  const iam = new IAMClient({ region: 'us-east-1', ...(iamEndpoint ? { endpoint: iamEndpoint } : {}), ...creds });
  return { lambda, iam };
}

function bucketAndPrefix(url: string): { bucket: string; prefix: string } {
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return { bucket: rest, prefix: '' };
  const prefix = rest.slice(slash + 1);
  return { bucket: rest.slice(0, slash), prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` };
}

/** Builds and checks the package and writes it to `out` (atomically); no AWS call. */
export async function deployDryRun(out: string, hooks: DeployHooks = {}): Promise<WorkerPackage> {
  const pkg = hooks.package ?? (await buildWorkerPackage());
  hooks.onStep?.(`built the worker package: ${mib(pkg.zippedBytes)} zipped, ${mib(pkg.unzippedBytes)} unzipped (${pkg.files.length} files), sha256 ${pkg.sha256}`);
  const probe = await probePackage(pkg);
  hooks.onStep?.(`checked: unpacked in an empty directory with no node_modules, it loads in ${probe.initMs.toFixed(0)} ms and answers a probe event`);
  const tmp = `${out}.${process.pid}.tmp`;
  await writeFile(tmp, pkg.zip);
  await rename(tmp, out);
  hooks.onStep?.(`wrote ${out}`);
  return pkg;
}

export async function deploy(input: DeployOptionsInput, hooks: DeployHooks = {}): Promise<DeployResult> {
  const s = parseDeployOptions(input);
  const step = (line: string): void => hooks.onStep?.(line);
  const pkg = hooks.package ?? (await buildWorkerPackage());
  checkPackageLimits(pkg);
  step(`built the worker package: ${mib(pkg.zippedBytes)} zipped, ${mib(pkg.unzippedBytes)} unzipped, sha256 ${pkg.sha256}`);
  const { lambda, iam } = clients(s, hooks);
  const actions: string[] = [];
  const act = (line: string): void => {
    actions.push(line);
    step(line);
  };
  try {
    let roleArn = s.roleArn;
    let roleIsNew = false;
    if (roleArn === undefined) {
      const role = await ensureRole(iam, { name: `${s.functionName}-role`, vpc: s.subnets.length > 0, store: s.store ? bucketAndPrefix(s.store) : undefined });
      for (const a of role.actions) act(a);
      if (role.actions.length === 0) step(`role ${role.arn} is up to date`);
      roleArn = role.arn;
      roleIsNew = role.created;
    }
    const wanted = {
      Runtime: s.runtime,
      Handler: pkg.handler,
      Role: roleArn,
      MemorySize: s.memoryMb,
      Timeout: s.timeoutS,
      VpcConfig: { SubnetIds: s.subnets, SecurityGroupIds: s.securityGroups },
      Description: 'Cirrus-TS worker',
    };
    const existing = await getFunction(lambda, s.functionName);
    const roleActions = actions.length;
    if (!existing) {
      await retryWhileRoleNotAssumable(
        () => lambda.send(new CreateFunctionCommand({ FunctionName: s.functionName, ...wanted, Architectures: [s.arch], Code: { ZipFile: pkg.zip }, PackageType: 'Zip', Publish: false })),
        { waits: hooks.waits, roleIsNew, onRetry: (n) => step(`Lambda cannot assume role ${roleArn} yet (new roles take a while to propagate); retry ${n}`) },
      );
      act(`created function ${s.functionName}`);
    } else {
      if (existing.CodeSha256 !== pkg.codeSha256 || (existing.Architectures ?? ['x86_64'])[0] !== s.arch) {
        await waitUntilReady(lambda, s.functionName, hooks.waits);
        await lambda.send(new UpdateFunctionCodeCommand({ FunctionName: s.functionName, ZipFile: pkg.zip, Architectures: [s.arch] })).catch((err) => {
          throw failure(`UpdateFunctionCode ${s.functionName}`, err);
        });
        act(`updated the code of ${s.functionName}`);
      }
      const drift = configDrift(existing, wanted);
      if (drift.length > 0) {
        await waitUntilReady(lambda, s.functionName, hooks.waits);
        await retryWhileRoleNotAssumable(() => lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: s.functionName, ...wanted })), { waits: hooks.waits, roleIsNew, onRetry: (n) => step(`Lambda cannot assume role ${roleArn} yet; retry ${n}`) });
        act(`updated the configuration of ${s.functionName} (${drift.join(', ')})`);
      }
    }
    const ready = await waitUntilReady(lambda, s.functionName, hooks.waits);
    if (actions.length > roleActions) step(`function ${s.functionName} is Active and its last update Successful`);

    const alias = await getAlias(lambda, s.functionName, s.alias);
    let version = alias?.FunctionVersion;
    const functionChanged = actions.length > roleActions;
    const aliasCurrent = !functionChanged && alias !== undefined && version !== undefined && (await versionSha(lambda, s.functionName, version)) === pkg.codeSha256;
    if (!aliasCurrent) {
      const published = await lambda.send(new PublishVersionCommand({ FunctionName: s.functionName, CodeSha256: ready.CodeSha256 })).catch((err) => {
        throw failure(`PublishVersion ${s.functionName}`, err);
      });
      version = published.Version!;
      act(`published version ${version}`);
      if (alias === undefined) {
        await lambda.send(new CreateAliasCommand({ FunctionName: s.functionName, Name: s.alias, FunctionVersion: version })).catch((err) => {
          throw failure(`CreateAlias ${s.alias}`, err);
        });
        act(`created alias ${s.alias} -> version ${version}`);
      } else if (alias.FunctionVersion !== version) {
        await lambda.send(new UpdateAliasCommand({ FunctionName: s.functionName, Name: s.alias, FunctionVersion: version })).catch((err) => {
          throw failure(`UpdateAlias ${s.alias}`, err);
        });
        act(`pointed alias ${s.alias} at version ${version}`);
      }
    }
    if (actions.length === 0) step(`nothing to change: ${s.functionName}:${s.alias} already runs this package (version ${version})`);
    const functionArn = ready.FunctionArn!;
    return {
      functionName: s.functionName,
      functionArn,
      aliasArn: `${functionArn}:${s.alias}`,
      version: version!,
      roleArn,
      sha256: pkg.sha256,
      zippedBytes: pkg.zippedBytes,
      unzippedBytes: pkg.unzippedBytes,
      actions,
    };
  } finally {
    lambda.destroy();
    iam.destroy();
  }
}

/** Deletes the function (with its versions and aliases) and the role deploy created for it. */
export async function removeDeployment(input: DeployOptionsInput, hooks: DeployHooks = {}): Promise<string[]> {
  const s = parseDeployOptions(input);
  const { lambda, iam } = clients(s, hooks);
  const done: string[] = [];
  const act = (line: string): void => {
    done.push(line);
    hooks.onStep?.(line);
  };
  try {
    try {
      await lambda.send(new DeleteFunctionCommand({ FunctionName: s.functionName }));
      act(`deleted function ${s.functionName} (its versions and aliases with it)`);
    } catch (err) {
      if (awsName(err) !== 'ResourceNotFoundException') throw failure(`DeleteFunction ${s.functionName}`, err);
      act(`function ${s.functionName} does not exist`);
    }
    if (s.roleArn === undefined) for (const line of await removeRole(iam, `${s.functionName}-role`)) act(line);
    return done;
  } finally {
    lambda.destroy();
    iam.destroy();
  }
}

async function getFunction(lambda: LambdaClient, name: string): Promise<FunctionConfiguration | undefined> {
  try {
    return (await lambda.send(new GetFunctionCommand({ FunctionName: name }))).Configuration;
  } catch (err) {
    if (awsName(err) === 'ResourceNotFoundException') return undefined;
    throw failure(`GetFunction ${name}`, err);
  }
}

async function getAlias(lambda: LambdaClient, name: string, alias: string): Promise<{ FunctionVersion?: string } | undefined> {
  try {
    return await lambda.send(new GetAliasCommand({ FunctionName: name, Name: alias }));
  } catch (err) {
    if (awsName(err) === 'ResourceNotFoundException') return undefined;
    throw failure(`GetAlias ${name}:${alias}`, err);
  }
}

async function versionSha(lambda: LambdaClient, name: string, version: string): Promise<string | undefined> {
  return (await getFunction(lambda, `${name}:${version}`))?.CodeSha256;
}

/** The fields whose deployed value differs from the wanted one. */
function configDrift(have: FunctionConfiguration, want: { Runtime: string; Handler: string; Role: string; MemorySize: number; Timeout: number; VpcConfig: { SubnetIds: string[]; SecurityGroupIds: string[] } }): string[] {
  const drift: string[] = [];
  if (have.Runtime !== want.Runtime) drift.push(`runtime ${have.Runtime} -> ${want.Runtime}`);
  if (have.Handler !== want.Handler) drift.push(`handler ${have.Handler} -> ${want.Handler}`);
  if (have.Role !== want.Role) drift.push('role');
  if (have.MemorySize !== want.MemorySize) drift.push(`memory ${have.MemorySize} -> ${want.MemorySize} MB`);
  if (have.Timeout !== want.Timeout) drift.push(`timeout ${have.Timeout} -> ${want.Timeout} s`);
  const sorted = (a: string[] | undefined) => [...(a ?? [])].sort().join(',');
  if (sorted(have.VpcConfig?.SubnetIds) !== sorted(want.VpcConfig.SubnetIds) || sorted(have.VpcConfig?.SecurityGroupIds) !== sorted(want.VpcConfig.SecurityGroupIds)) drift.push('VPC');
  return drift;
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}
