/**
 * A local stand-in for AWS Lambda (and the IAM calls a deployment makes), driven through the real
 * @aws-sdk/client-lambda and @aws-sdk/client-iam, since neither service can run here. It enforces
 * the documented behaviour that shapes our code:
 *
 * Control plane (REST, /2015-03-31/functions...): CreateFunction, GetFunction,
 * GetFunctionConfiguration, UpdateFunctionCode, UpdateFunctionConfiguration, PublishVersion,
 * Create/Get/UpdateAlias, DeleteFunction. Packages at most 50 MB zipped (413) and 250 MB unzipped;
 * Timeout 1-900 s; MemorySize 128-10,240 MB; nodejs runtimes; a role that exists, trusts
 * lambda.amazonaws.com and has propagated (a new role fails its first CreateFunction calls with
 * "cannot be assumed"); VPC settings need a role with VPC access. A new function is Pending before
 * Active; an update is InProgress before Successful; changes and invokes meanwhile are refused with
 * ResourceConflictException. PublishVersion publishes nothing new when nothing changed.
 *
 * Invoke (POST .../invocations): RequestResponse, Event (202, runs in the background) and DryRun;
 * payload limits (6 MB / 256 KB); throttling on demand; LogType=Tail with START/END/REPORT lines.
 * Every invocation runs the function's *unzipped package*, not our sources: a fresh process
 * (lambda-sandbox.ts, lambda-runtime.ts) in the code's directory under a temp root with no
 * node_modules above it, with Lambda's environment variables, a context object, the function's
 * memory cap and timeout, and -- when a network is given -- inside a network namespace of its own.
 * There is no warm reuse: every invocation is a cold start. Event invocations are not retried.
 */
import { type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readZip } from '../../client/deploy/zip.js';
import { IamStandIn, type RoleState } from './lambda-iam.js';
import { lambdaEnvironment } from '../../client/deploy/emulator/probe.js';
import { runSandbox, type SandboxOutcome } from '../../client/deploy/emulator/sandbox.js';

export const SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024;
export const ASYNC_PAYLOAD_LIMIT = 256 * 1024;
export const ZIPPED_LIMIT = 50 * 1024 * 1024;
export const UNZIPPED_LIMIT = 250 * 1024 * 1024;
const LOG_TAIL_BYTES = 4096;
const RUNTIMES = new Set(['nodejs18.x', 'nodejs20.x', 'nodejs22.x']);
const VPC_POLICY = 'arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole';

export type InvocationType = 'RequestResponse' | 'Event' | 'DryRun';
export type InvocationOutcome = SandboxOutcome;

export interface FunctionOptions {
  /** Alias name -> version (e.g. { prod: '3' }); those versions are created with the same code. */
  aliases?: Record<string, string>;
  timeoutS?: number;
  memoryMb?: number;
  /** Every invoke answers 403 AccessDeniedException. */
  denied?: boolean;
  /** The function's package; default: the service's defaultZip. */
  zip?: Uint8Array;
  handler?: string;
}

export interface LambdaServiceOptions {
  /** Functions that exist from the start. Default: none. */
  functions?: Record<string, FunctionOptions>;
  /** Package of functions given without their own zip. */
  defaultZip?: Uint8Array;
  region?: string;
  accountId?: string;
  /** Extra environment variables for every sandbox. */
  env?: Record<string, string>;
  /** Runs every sandbox with this command prefix (a network namespace: ['ip', 'netns', 'exec', name]). */
  execPrefix?: readonly string[];
  /** How long a new function stays Pending. Default 200 ms. */
  pendingMs?: number;
  /** How long an update stays InProgress. Default 200 ms. */
  updateMs?: number;
  /** CreateFunction calls a new role fails as not yet assumable. Default 2. */
  roleAssumeRejections?: number;
}

export interface InvocationRecord {
  requestId: string;
  functionName: string;
  qualifier: string | undefined;
  executedVersion: string;
  type: InvocationType;
  event: unknown;
  /** The sandbox's stdout and stderr lines, as CloudWatch would get them. */
  logs: string[];
  outcome?: InvocationOutcome;
  /** Event handed over to outcome. */
  durationMs?: number;
  /** Process start to handler loaded (the init phase). */
  initMs?: number;
  maxRssKb?: number;
  /** Epoch ms: invoke received, handler ready (init done). */
  receivedAt: number;
  readyAt?: number;
}

interface Code {
  sha256: string; // base64, as Lambda reports CodeSha256
  size: number;
  dir: string;
}

interface Config {
  runtime: string;
  role: string;
  handler: string;
  timeoutS: number;
  memoryMb: number;
  architectures: string[];
  env: Record<string, string>;
  vpc: { subnets: string[]; securityGroups: string[] } | undefined;
  description: string;
}

interface Snapshot {
  version: string;
  code: Code;
  config: Config;
  lastModified: string;
  revisionId: string;
}

interface FunctionState {
  name: string;
  code: Code;
  config: Config;
  denied: boolean;
  lastModified: string;
  revisionId: string;
  /** Epoch ms until which the function is Pending / its last update InProgress. */
  pendingUntil: number;
  updatingUntil: number;
  versions: Map<string, Snapshot>;
  nextVersion: number;
  aliases: Map<string, { version: string; description: string; revisionId: string }>;
  /** Changed since the last published version. */
  dirty: boolean;
}

interface Running {
  record: InvocationRecord;
  child: ChildProcess | undefined;
  done: Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errorType: string,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${status} ${errorType}`);
  }
}

const userError = (status: number, type: string, message: string): HttpError => new HttpError(status, type, { Type: 'User', message });
const invalid = (message: string): HttpError => userError(400, 'InvalidParameterValueException', message);

function lambdaTimestamp(d = new Date()): string {
  return d.toISOString().replace('Z', '+0000');
}

/** Refuses to start where Node would find a node_modules above the code: the package must stand alone. */
function checkNoNodeModulesAbove(dir: string): void {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) throw new Error(`the Lambda stand-in's code root ${dir} has ${join(d, 'node_modules')} above it: a package would load modules it does not carry`);
    if (dirname(d) === d) return;
  }
}

export class LambdaService extends EventEmitter<{ invocation: [InvocationRecord] }> {
  readonly counts: Record<InvocationType, number> = { RequestResponse: 0, Event: 0, DryRun: 0 };
  /** Every HTTP request received, refused or not. */
  requests = 0;
  readonly invocations: InvocationRecord[] = [];
  /** Every control-plane operation called ('CreateFunction', 'UpdateFunctionCode', ...; IAM calls in iam.calls). */
  readonly calls: string[] = [];
  readonly iam: IamStandIn;
  lastHeaders: Record<string, string | string[] | undefined> = {};
  lastPath = '';

  private readonly functions = new Map<string, FunctionState>();
  private readonly running = new Set<Running>();
  private throttles: { left: number; retryAfterS: number | undefined } = { left: 0, retryAfterS: undefined };
  private closing = false;
  private readonly region: string;
  private readonly accountId: string;

  private constructor(
    private readonly server: Server,
    private readonly root: string,
    private readonly options: LambdaServiceOptions,
  ) {
    super();
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '123456789012';
    this.iam = new IamStandIn(this.accountId, () => options.roleAssumeRejections ?? 2);
  }

  static async start(options: LambdaServiceOptions = {}): Promise<LambdaService> {
    const root = await mkdtemp(join(tmpdir(), 'cirrus-lambda-'));
    checkNoNodeModulesAbove(root);
    const server = createServer();
    const self = new LambdaService(server, root, options);
    try {
      for (const [name, f] of Object.entries(options.functions ?? {})) await self.preload(name, f);
    } catch (err) {
      await rm(root, { recursive: true, force: true });
      throw err;
    }
    server.on('request', (req, res) => void self.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return self;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The endpoint to give the SDK clients (Lambda and IAM). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  arn(name: string): string {
    return `arn:aws:lambda:${this.region}:${this.accountId}:function:${name}`;
  }

  /** A role created here, trusted by Lambda and already propagated (for tests that only invoke). */
  readyRole(name = 'cirrus-test-role'): string {
    const existing = this.iam.roles.get(name);
    if (existing) return existing.arn;
    const form = new URLSearchParams({ Action: 'CreateRole', RoleName: name, AssumeRolePolicyDocument: JSON.stringify(lambdaTrust()) });
    this.iam.handle(form, 'setup');
    this.iam.calls.pop();
    const role = this.iam.roles.get(name)!;
    role.assumeRejectionsLeft = 0;
    return role.arn;
  }

  /** The function's state as GetFunctionConfiguration would report it (undefined when absent). */
  functionConfiguration(name: string): Record<string, unknown> | undefined {
    const f = this.functions.get(name);
    return f ? this.configJson(f, '$LATEST') : undefined;
  }

  throttleNext(count: number, retryAfterS?: number): void {
    this.throttles = { left: count, retryAfterS };
  }

  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running].map((r) => r.done));
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const r of this.running) r.child?.kill('SIGKILL');
    await this.idle();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await rm(this.root, { recursive: true, force: true });
  }

  // -------------------------------------------------------------------------------------------
  // Code and state

  private async storeCode(zip: Uint8Array): Promise<Code> {
    if (zip.byteLength > ZIPPED_LIMIT) throw userError(413, 'RequestEntityTooLargeException', `Request must be smaller than ${ZIPPED_LIMIT} bytes for the CreateFunction operation`);
    let files;
    try {
      files = readZip(zip, 'ZipFile', UNZIPPED_LIMIT);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'DEPLOY_PACKAGE_TOO_LARGE') throw invalid(`Unzipped size must be smaller than ${UNZIPPED_LIMIT} bytes`);
      throw invalid(`Could not unzip uploaded file. Please check your file, then try to upload again. (${(err as Error).message})`);
    }
    const hex = createHash('sha256').update(zip).digest('hex');
    const dir = join(this.root, 'code', hex);
    if (!existsSync(dir)) {
      for (const f of files) {
        if (f.name.split('/').includes('..') || f.name.startsWith('/')) throw invalid(`Could not unzip uploaded file: entry '${f.name}' leaves the code directory`);
        await mkdir(dirname(join(dir, f.name)), { recursive: true });
        await writeFile(join(dir, f.name), f.bytes);
      }
    }
    return { sha256: createHash('sha256').update(zip).digest('base64'), size: zip.byteLength, dir };
  }

  private async preload(name: string, f: FunctionOptions): Promise<void> {
    const zip = f.zip ?? this.options.defaultZip;
    if (!zip) throw new Error(`function '${name}': no package (give its zip or the service's defaultZip)`);
    const code = await this.storeCode(zip);
    const state: FunctionState = {
      name,
      code,
      config: { runtime: 'nodejs20.x', role: this.readyRole(), handler: f.handler ?? 'index.handler', timeoutS: f.timeoutS ?? 900, memoryMb: f.memoryMb ?? 512, architectures: ['x86_64'], env: {}, vpc: undefined, description: '' },
      denied: f.denied ?? false,
      lastModified: lambdaTimestamp(),
      revisionId: randomUUID(),
      pendingUntil: 0,
      updatingUntil: 0,
      versions: new Map(),
      nextVersion: 1,
      aliases: new Map(),
      dirty: true,
    };
    for (const v of new Set(Object.values(f.aliases ?? {}))) state.versions.set(v, { version: v, code, config: { ...state.config }, lastModified: state.lastModified, revisionId: randomUUID() });
    for (const [alias, v] of Object.entries(f.aliases ?? {})) state.aliases.set(alias, { version: v, description: '', revisionId: randomUUID() });
    this.functions.set(name, state);
  }

  private stateOf(f: FunctionState): 'Pending' | 'Active' {
    return Date.now() < f.pendingUntil ? 'Pending' : 'Active';
  }

  private updateStatusOf(f: FunctionState): 'InProgress' | 'Successful' {
    return Date.now() < f.updatingUntil ? 'InProgress' : 'Successful';
  }

  private configJson(f: FunctionState, version: string): Record<string, unknown> {
    const snap = version === '$LATEST' ? undefined : f.versions.get(version);
    const config = snap?.config ?? f.config;
    const code = snap?.code ?? f.code;
    const arn = this.arn(f.name) + (version === '$LATEST' ? '' : `:${version}`);
    const state = this.stateOf(f);
    const update = this.updateStatusOf(f);
    return {
      FunctionName: f.name,
      FunctionArn: arn,
      Runtime: config.runtime,
      Role: config.role,
      Handler: config.handler,
      CodeSize: code.size,
      CodeSha256: code.sha256,
      Description: config.description,
      Timeout: config.timeoutS,
      MemorySize: config.memoryMb,
      LastModified: snap?.lastModified ?? f.lastModified,
      Version: version,
      Architectures: config.architectures,
      PackageType: 'Zip',
      EphemeralStorage: { Size: 512 },
      Environment: { Variables: config.env },
      ...(config.vpc ? { VpcConfig: { SubnetIds: config.vpc.subnets, SecurityGroupIds: config.vpc.securityGroups, VpcId: 'vpc-standin' } } : {}),
      State: state,
      ...(state === 'Pending' ? { StateReason: 'The function is being created.', StateReasonCode: 'Creating' } : {}),
      LastUpdateStatus: update,
      ...(update === 'InProgress' ? { LastUpdateStatusReason: 'The function is being updated.', LastUpdateStatusReasonCode: 'InProgress' } : {}),
      RevisionId: snap?.revisionId ?? f.revisionId,
    };
  }

  /** Splits a FunctionName (+ Qualifier) the way Lambda does. */
  private resolve(raw: string, queryQualifier: string | undefined): { f: FunctionState; qualifier: string | undefined; version: string } {
    const notFound = (what: string): HttpError => new HttpError(404, 'ResourceNotFoundException', { Type: 'User', Message: `Function not found: ${what}` });
    const m = /^(?:arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:|(\d{12}):function:)?([a-zA-Z0-9_-]{1,64})(?::(\$LATEST|[a-zA-Z0-9_-]+))?$/.exec(raw);
    if (!m) throw invalid(`1 validation error detected: Value '${raw}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern`);
    const [, arnRegion, arnAccount, partialAccount, name, nameQualifier] = m as unknown as [string, string | undefined, string | undefined, string | undefined, string, string | undefined];
    if (nameQualifier !== undefined && queryQualifier !== undefined && nameQualifier !== queryQualifier) throw invalid('The derived qualifier from the function name does not match the specified qualifier.');
    const qualifier = nameQualifier ?? queryQualifier;
    const arn = this.arn(name) + (qualifier !== undefined ? `:${qualifier}` : '');
    const account = arnAccount ?? partialAccount;
    if ((arnRegion !== undefined && arnRegion !== this.region) || (account !== undefined && account !== this.accountId)) throw notFound(raw);
    const f = this.functions.get(name);
    if (!f) throw notFound(arn);
    if (qualifier === undefined || qualifier === '$LATEST') return { f, qualifier, version: '$LATEST' };
    const alias = f.aliases.get(qualifier);
    if (alias) return { f, qualifier, version: alias.version };
    if (f.versions.has(qualifier)) return { f, qualifier, version: qualifier };
    throw notFound(arn);
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests++;
    this.lastHeaders = { ...req.headers };
    this.lastPath = req.url ?? '';
    const requestId = randomUUID();
    try {
      const body = await readBody(req);
      if (!req.headers.authorization) throw new HttpError(403, 'MissingAuthenticationTokenException', { message: 'Missing Authentication Token' });
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (req.method === 'POST' && url.pathname === '/') {
        const reply = this.iam.handle(new URLSearchParams(body.toString('utf8')), requestId);
        res.writeHead(reply.status, { 'x-amzn-RequestId': requestId, 'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(reply.body) });
        res.end(reply.body);
        return;
      }
      const reply = await this.route(req, url, body, requestId);
      res.writeHead(reply.status, { 'x-amzn-RequestId': requestId, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(reply.body), ...reply.headers });
      res.end(reply.body);
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, 'ServiceException', { Type: 'Service', Message: `stand-in: ${(err as Error).message}` });
      const text = JSON.stringify(e.body);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(e.status, { 'x-amzn-RequestId': requestId, 'x-amzn-ErrorType': e.errorType, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...e.headers });
      res.end(text);
    }
  }

  private async route(req: IncomingMessage, url: URL, body: Buffer, requestId: string): Promise<{ status: number; body: string; headers?: Record<string, string> }> {
    const method = req.method ?? 'GET';
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] !== '2015-03-31' || parts[1] !== 'functions') throw new HttpError(404, 'UnknownOperationException', { message: `Unknown operation ${method} ${url.pathname}` });
    const q = url.searchParams.get('Qualifier') ?? undefined;
    const json = (): Record<string, unknown> => {
      if (body.byteLength === 0) return {};
      try {
        return JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch (err) {
        throw userError(400, 'InvalidRequestContentException', `Could not parse request body into json: ${(err as Error).message}`);
      }
    };
    const [, , fn, sub, subName] = parts;
    const op = (name: string): void => void this.calls.push(name);
    if (fn === undefined && method === 'POST') return op('CreateFunction'), this.createFunction(json());
    if (fn === undefined) throw new HttpError(404, 'UnknownOperationException', { message: `Unknown operation ${method} ${url.pathname}` });
    if (sub === 'invocations' && method === 'POST') return this.invoke(req, fn, q, body, requestId);
    if (sub === undefined && method === 'GET') {
      op('GetFunction');
      const { f, version } = this.resolve(fn, q);
      return ok(200, { Configuration: this.configJson(f, version), Code: { RepositoryType: 'S3', Location: `https://stand-in.invalid/${f.name}` }, Tags: {} });
    }
    if (sub === undefined && method === 'DELETE') {
      op('DeleteFunction');
      const { f } = this.resolve(fn, q);
      this.functions.delete(f.name);
      return { status: 204, body: '' };
    }
    if (sub === 'configuration' && method === 'GET') {
      op('GetFunctionConfiguration');
      const { f, version } = this.resolve(fn, q);
      return ok(200, this.configJson(f, version));
    }
    if (sub === 'configuration' && method === 'PUT') return op('UpdateFunctionConfiguration'), this.updateConfiguration(fn, json());
    if (sub === 'code' && method === 'PUT') return op('UpdateFunctionCode'), this.updateCode(fn, json());
    if (sub === 'versions' && method === 'POST') return op('PublishVersion'), this.publishVersion(fn, json());
    if (sub === 'aliases' && subName === undefined && method === 'POST') return op('CreateAlias'), this.createAlias(fn, json());
    if (sub === 'aliases' && subName !== undefined && method === 'GET') return op('GetAlias'), this.aliasJson(this.resolve(fn, undefined).f, subName, 200);
    if (sub === 'aliases' && subName !== undefined && method === 'PUT') return op('UpdateAlias'), this.updateAlias(fn, subName, json());
    throw new HttpError(404, 'UnknownOperationException', { message: `Unknown operation ${method} ${url.pathname}` });
  }

  // -------------------------------------------------------------------------------------------
  // Control plane

  private validateConfig(body: Record<string, unknown>, base: Config | undefined): Config {
    const num = (field: string, key: string, lo: number, hi: number, dflt: number): number => {
      const v = body[key];
      if (v === undefined) return dflt;
      if (typeof v !== 'number' || !Number.isInteger(v)) throw userError(400, 'ValidationException', `1 validation error detected: Value '${String(v)}' at '${field}' failed to satisfy constraint: Member must be an integer`);
      if (v < lo) throw userError(400, 'ValidationException', `1 validation error detected: Value '${v}' at '${field}' failed to satisfy constraint: Member must have value greater than or equal to ${lo}`);
      if (v > hi) throw userError(400, 'ValidationException', `1 validation error detected: Value '${v}' at '${field}' failed to satisfy constraint: Member must have value less than or equal to ${hi}`);
      return v;
    };
    const runtime = (body.Runtime as string | undefined) ?? base?.runtime;
    if (runtime === undefined || !RUNTIMES.has(runtime)) throw invalid(`Value ${String(runtime)} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [${[...RUNTIMES].join(', ')}]`);
    const handler = (body.Handler as string | undefined) ?? base?.handler;
    if (handler === undefined || !/^[^\s]+\.[^\s.]+$/.test(handler)) throw invalid(`Value ${String(handler)} at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: [^\\s]+`);
    const role = (body.Role as string | undefined) ?? base?.role;
    if (role === undefined || !/^arn:aws[a-zA-Z-]*:iam::\d{12}:role\/?[a-zA-Z_0-9+=,.@\-_/]+$/.test(role)) throw invalid(`Value ${String(role)} at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern`);
    const arch = (body.Architectures as string[] | undefined) ?? base?.architectures ?? ['x86_64'];
    if (!Array.isArray(arch) || arch.length !== 1 || !['x86_64', 'arm64'].includes(arch[0]!)) throw invalid(`Value ${JSON.stringify(arch)} at 'architectures' failed to satisfy constraint: Member must have length 1 and be one of [x86_64, arm64]`);
    const vpcIn = body.VpcConfig as { SubnetIds?: string[]; SecurityGroupIds?: string[] } | undefined;
    const vpc = vpcIn ? ((vpcIn.SubnetIds ?? []).length > 0 ? { subnets: vpcIn.SubnetIds ?? [], securityGroups: vpcIn.SecurityGroupIds ?? [] } : undefined) : base?.vpc;
    const envIn = (body.Environment as { Variables?: Record<string, string> } | undefined)?.Variables;
    return {
      runtime,
      handler,
      role,
      architectures: arch,
      timeoutS: num('timeout', 'Timeout', 1, 900, base?.timeoutS ?? 3),
      memoryMb: num('memorySize', 'MemorySize', 128, 10_240, base?.memoryMb ?? 128),
      env: envIn ?? base?.env ?? {},
      vpc,
      description: (body.Description as string | undefined) ?? base?.description ?? '',
    };
  }

  /** Lambda assumes the role on create and on a role change: it must exist, trust Lambda, and have propagated. */
  private checkRole(config: Config): void {
    const role: RoleState | undefined = this.iam.roleByArn(config.role);
    const notAssumable = invalid('The role defined for the function cannot be assumed by Lambda.');
    if (!role) throw notAssumable;
    if (!role.trust.includes('lambda.amazonaws.com')) throw notAssumable;
    if (role.assumeRejectionsLeft > 0) {
      role.assumeRejectionsLeft--;
      throw notAssumable;
    }
    if (config.vpc && !role.attached.has(VPC_POLICY)) throw invalid('The provided execution role does not have permissions to call CreateNetworkInterface on EC2');
  }

  private zipOf(body: Record<string, unknown>, where: string): Uint8Array {
    const b64 = (where === 'Code' ? (body.Code as { ZipFile?: string } | undefined)?.ZipFile : body.ZipFile) as string | undefined;
    if (typeof b64 !== 'string' || b64.length === 0) throw invalid('Please provide a source for function code.');
    return new Uint8Array(Buffer.from(b64, 'base64'));
  }

  private async createFunction(body: Record<string, unknown>): Promise<{ status: number; body: string }> {
    const name = body.FunctionName;
    if (typeof name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(name)) throw invalid(`1 validation error detected: Value '${String(name)}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern`);
    if (this.functions.has(name)) throw userError(409, 'ResourceConflictException', `Function already exist: ${name}`);
    const config = this.validateConfig(body, undefined);
    const code = await this.storeCode(this.zipOf(body, 'Code'));
    this.checkRole(config);
    const now = Date.now();
    const f: FunctionState = {
      name,
      code,
      config,
      denied: false,
      lastModified: lambdaTimestamp(),
      revisionId: randomUUID(),
      pendingUntil: now + (this.options.pendingMs ?? 200),
      updatingUntil: 0,
      versions: new Map(),
      nextVersion: 1,
      aliases: new Map(),
      dirty: true,
    };
    this.functions.set(name, f);
    if (body.Publish === true) this.publish(f);
    return ok(201, this.configJson(f, '$LATEST'));
  }

  private busy(f: FunctionState): void {
    if (this.stateOf(f) === 'Pending') throw userError(409, 'ResourceConflictException', `The operation cannot be performed at this time. The function is currently in the following state: Pending`);
    if (this.updateStatusOf(f) === 'InProgress') throw userError(409, 'ResourceConflictException', `The operation cannot be performed at this time. An update is in progress for resource: ${this.arn(f.name)}`);
  }

  private changed(f: FunctionState): void {
    f.updatingUntil = Date.now() + (this.options.updateMs ?? 200);
    f.lastModified = lambdaTimestamp();
    f.revisionId = randomUUID();
    f.dirty = true;
  }

  private async updateCode(fn: string, body: Record<string, unknown>): Promise<{ status: number; body: string }> {
    const { f } = this.resolve(fn, undefined);
    this.busy(f);
    const code = await this.storeCode(this.zipOf(body, 'ZipFile'));
    if (body.Architectures !== undefined) f.config = this.validateConfig({ Architectures: body.Architectures }, f.config);
    f.code = code;
    this.changed(f);
    if (body.Publish === true) this.publish(f);
    return ok(200, this.configJson(f, '$LATEST'));
  }

  private updateConfiguration(fn: string, body: Record<string, unknown>): { status: number; body: string } {
    const { f } = this.resolve(fn, undefined);
    this.busy(f);
    const config = this.validateConfig(body, f.config);
    if (config.role !== f.config.role || (config.vpc && !f.config.vpc)) this.checkRole(config);
    f.config = config;
    this.changed(f);
    return ok(200, this.configJson(f, '$LATEST'));
  }

  private publish(f: FunctionState): Snapshot {
    if (!f.dirty && f.versions.size > 0) return [...f.versions.values()].at(-1)!;
    const version = String(f.nextVersion++);
    const snap: Snapshot = { version, code: f.code, config: { ...f.config }, lastModified: f.lastModified, revisionId: randomUUID() };
    f.versions.set(version, snap);
    f.dirty = false;
    return snap;
  }

  private publishVersion(fn: string, body: Record<string, unknown>): { status: number; body: string } {
    const { f } = this.resolve(fn, undefined);
    this.busy(f);
    if (typeof body.CodeSha256 === 'string' && body.CodeSha256 !== f.code.sha256) {
      throw userError(412, 'PreconditionFailedException', `CodeSHA256 (${body.CodeSha256}) is different from current CodeSHA256 in $LATEST (${f.code.sha256}). Please try again with the CodeSHA256 in $LATEST.`);
    }
    const snap = this.publish(f);
    return ok(201, this.configJson(f, snap.version));
  }

  private aliasJson(f: FunctionState, alias: string, status: number): { status: number; body: string } {
    const a = f.aliases.get(alias);
    if (!a) throw new HttpError(404, 'ResourceNotFoundException', { Type: 'User', Message: `Alias not found: ${this.arn(f.name)}:${alias}` });
    return ok(status, { AliasArn: `${this.arn(f.name)}:${alias}`, Name: alias, FunctionVersion: a.version, Description: a.description, RevisionId: a.revisionId });
  }

  private createAlias(fn: string, body: Record<string, unknown>): { status: number; body: string } {
    const { f } = this.resolve(fn, undefined);
    const name = body.Name;
    const version = body.FunctionVersion;
    if (typeof name !== 'string' || !/^(?!^[0-9]+$)([a-zA-Z0-9-_]+)$/.test(name)) throw invalid(`Value '${String(name)}' at 'name' failed to satisfy constraint`);
    if (typeof version !== 'string' || (version !== '$LATEST' && !f.versions.has(version))) throw new HttpError(404, 'ResourceNotFoundException', { Type: 'User', Message: `Function not found: ${this.arn(f.name)}:${String(version)}` });
    if (f.aliases.has(name)) throw userError(409, 'ResourceConflictException', `Alias already exists: ${this.arn(f.name)}:${name}`);
    f.aliases.set(name, { version, description: (body.Description as string | undefined) ?? '', revisionId: randomUUID() });
    return this.aliasJson(f, name, 201);
  }

  private updateAlias(fn: string, alias: string, body: Record<string, unknown>): { status: number; body: string } {
    const { f } = this.resolve(fn, undefined);
    const a = f.aliases.get(alias);
    if (!a) throw new HttpError(404, 'ResourceNotFoundException', { Type: 'User', Message: `Alias not found: ${this.arn(f.name)}:${alias}` });
    const version = body.FunctionVersion;
    if (version !== undefined) {
      if (typeof version !== 'string' || (version !== '$LATEST' && !f.versions.has(version))) throw new HttpError(404, 'ResourceNotFoundException', { Type: 'User', Message: `Function not found: ${this.arn(f.name)}:${String(version)}` });
      a.version = version;
    }
    a.revisionId = randomUUID();
    return this.aliasJson(f, alias, 200);
  }

  // -------------------------------------------------------------------------------------------
  // Invoke

  private async invoke(req: IncomingMessage, fn: string, queryQualifier: string | undefined, body: Buffer, requestId: string): Promise<{ status: number; body: string; headers: Record<string, string> }> {
    const { f, qualifier, version } = this.resolve(fn, queryQualifier);
    if (f.denied) {
      throw new HttpError(403, 'AccessDeniedException', { Message: `User: arn:aws:iam::${this.accountId}:user/test is not authorized to perform: lambda:InvokeFunction on resource: ${this.arn(f.name)} because no identity-based policy allows the lambda:InvokeFunction action` });
    }
    const typeHeader = header(req, 'x-amz-invocation-type') ?? 'RequestResponse';
    if (typeHeader !== 'RequestResponse' && typeHeader !== 'Event' && typeHeader !== 'DryRun') {
      throw invalid(`1 validation error detected: Value '${typeHeader}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]`);
    }
    const type: InvocationType = typeHeader;
    if (this.stateOf(f) === 'Pending') throw userError(409, 'ResourceConflictException', 'The operation cannot be performed at this time. The function is currently in the following state: Pending');
    if (this.throttles.left > 0) {
      this.throttles.left--;
      const headers: Record<string, string> = this.throttles.retryAfterS !== undefined ? { 'Retry-After': String(this.throttles.retryAfterS) } : {};
      throw new HttpError(429, 'TooManyRequestsException', { Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' }, headers);
    }
    const limit = type === 'Event' ? ASYNC_PAYLOAD_LIMIT : SYNC_PAYLOAD_LIMIT;
    if (body.byteLength > limit) throw userError(413, 'RequestEntityTooLargeException', `Request must be smaller than ${limit} bytes for the InvokeFunction operation`);
    let event: unknown = {};
    if (body.byteLength > 0) {
      try {
        event = JSON.parse(body.toString('utf8'));
      } catch (err) {
        throw userError(400, 'InvalidRequestContentException', `Could not parse request body into json: ${(err as Error).message}`);
      }
    }
    const headers = { 'X-Amz-Executed-Version': version };
    this.counts[type]++;
    if (type === 'DryRun') return { status: 204, body: '', headers };

    const record: InvocationRecord = { requestId, functionName: f.name, qualifier, executedVersion: version, type, event, logs: [], receivedAt: Date.now() };
    this.invocations.push(record);
    const snap = version === '$LATEST' ? { code: f.code, config: f.config } : f.versions.get(version)!;
    const run = this.run(record, snap.code, snap.config, version);
    if (type === 'Event') return { status: 202, body: '', headers };
    await run;
    const outcome = record.outcome!;
    const out: Record<string, string> = { ...headers };
    if (header(req, 'x-amz-log-type') === 'Tail') out['X-Amz-Log-Result'] = logTail(record, snap.config.memoryMb);
    if (outcome.ok) return { status: 200, body: outcome.payload, headers: out };
    out['X-Amz-Function-Error'] = 'Unhandled';
    return { status: 200, body: JSON.stringify({ errorMessage: outcome.errorMessage, errorType: outcome.errorType, stackTrace: outcome.stackTrace }), headers: out };
  }

  private lambdaEnv(name: string, version: string, config: Config, codeDir: string): Record<string, string> {
    return {
      ...lambdaEnvironment(codeDir, { functionName: name, memoryMb: config.memoryMb, timeoutS: config.timeoutS, region: this.region, handler: config.handler }),
      LAMBDA_RUNTIME_DIR: dirname(codeDir),
      AWS_EXECUTION_ENV: `AWS_Lambda_${config.runtime}`,
      AWS_LAMBDA_FUNCTION_VERSION: version,
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `stand-in/${version}`,
      // The execution role's temporary credentials.
      AWS_ACCESS_KEY_ID: 'ASIASTANDINROLEKEY',
      AWS_SECRET_ACCESS_KEY: 'stand-in-role-secret',
      AWS_SESSION_TOKEN: 'stand-in-session-token',
      ...config.env,
      ...(this.options.env ?? {}),
    };
  }

  private run(record: InvocationRecord, code: Code, config: Config, version: string): Promise<void> {
    const entry: Running = { record, child: undefined, done: Promise.resolve() };
    const closed = (): Promise<void> => {
      record.outcome = { ok: false, errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${record.requestId} Error: the stand-in is closing`, stackTrace: [] };
      return Promise.resolve();
    };
    entry.done = (
      this.closing
        ? closed()
        : runSandbox({
            requestId: record.requestId,
            codeDir: code.dir,
            handler: config.handler,
            timeoutS: config.timeoutS,
            memoryMb: config.memoryMb,
            env: this.lambdaEnv(record.functionName, version, config, code.dir),
            event: record.event,
            functionName: record.functionName,
            functionVersion: version,
            invokedFunctionArn: this.arn(record.functionName) + (record.qualifier !== undefined ? `:${record.qualifier}` : ''),
            ...(this.options.execPrefix ? { execPrefix: this.options.execPrefix } : {}),
            onLine: (line) => record.logs.push(line),
            started: (child) => (entry.child = child),
          }).then((r) => {
            record.outcome = r.outcome;
            record.durationMs = r.durationMs;
            if (r.initMs !== undefined) {
              record.initMs = r.initMs;
              record.readyAt = record.receivedAt + r.initMs;
            }
            if (r.maxRssKb !== undefined) record.maxRssKb = r.maxRssKb;
          })
    ).then(() => {
      this.running.delete(entry);
      this.emit('invocation', record);
    });
    this.running.add(entry);
    return entry.done;
  }
}

export function lambdaTrust(): Record<string, unknown> {
  return { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] };
}

function ok(status: number, body: unknown): { status: number; body: string } {
  return { status, body: JSON.stringify(body) };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The X-Amz-Log-Result header: base64 of the last 4 KB of START / log lines / END / REPORT. */
function logTail(record: InvocationRecord, memoryMb: number): string {
  const ms = (record.durationMs ?? 0).toFixed(2);
  const usedMb = record.maxRssKb !== undefined ? Math.ceil(record.maxRssKb / 1024) : memoryMb;
  // Every sandbox here is fresh, so every invocation reports an init phase.
  const init = record.initMs !== undefined ? `\tInit Duration: ${record.initMs.toFixed(2)} ms` : '';
  const lines = [
    `START RequestId: ${record.requestId} Version: ${record.executedVersion}`,
    ...record.logs,
    `END RequestId: ${record.requestId}`,
    `REPORT RequestId: ${record.requestId}\tDuration: ${ms} ms\tBilled Duration: ${Math.ceil(Number(ms))} ms\tMemory Size: ${memoryMb} MB\tMax Memory Used: ${usedMb} MB${init}`,
  ];
  const bytes = Buffer.from(lines.join('\n') + '\n', 'utf8');
  return bytes.subarray(Math.max(0, bytes.byteLength - LOG_TAIL_BYTES)).toString('base64');
}
