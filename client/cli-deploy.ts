/**
 * `cirrus deploy`: the worker package onto AWS Lambda (client/deploy/). Credentials come from the
 * standard AWS chain; `--endpoint-url` points at another Lambda/IAM endpoint (a stand-in).
 */
import { Command, InvalidArgumentError, Option } from 'commander';

interface DeployCliOptions {
  function: string;
  memory: number;
  timeout: number;
  arch: 'x86_64' | 'arm64';
  runtime: 'nodejs20.x' | 'nodejs22.x';
  roleArn?: string;
  subnets?: string[];
  securityGroups?: string[];
  store?: string;
  alias: string;
  region?: string;
  endpointUrl?: string;
  iamEndpointUrl?: string;
  dryRun?: boolean;
  out?: string;
  remove?: boolean;
  json?: boolean;
}

function int(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name}: '${v}' is not a whole number`);
    return n;
  };
}

const list = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);

export function addDeployCommand(program: Command): void {
  program
    .command('deploy')
    .description('build the worker package and create or update the Lambda function (role, version, alias)')
    .option('--function <name>', 'Lambda function name', 'cirrus-worker')
    .option('--memory <MB>', 'memory size (128-10240)', int('--memory'), 2048)
    .option('--timeout <s>', 'time limit per invocation (1-900)', int('--timeout'), 900)
    .addOption(new Option('--arch <arch>', 'instruction set').choices(['x86_64', 'arm64']).default('x86_64'))
    .addOption(new Option('--runtime <runtime>', 'Node.js runtime').choices(['nodejs20.x', 'nodejs22.x']).default('nodejs20.x'))
    .option('--role-arn <arn>', 'execution role to use as it is (default: create and manage <function>-role)')
    .option('--store <s3url>', 'the s3://bucket/prefix workers use: the created role may read and write exactly there')
    .option('--subnets <ids>', 'comma-separated subnet ids: run in a VPC (e.g. to reach ElastiCache)', list)
    .option('--security-groups <ids>', 'comma-separated security group ids (with --subnets)', list)
    .option('--alias <name>', 'alias pointed at the published version', 'live')
    .option('--region <region>', 'AWS region (default: the SDK chain, AWS_REGION)')
    .option('--endpoint-url <url>', 'Lambda endpoint (and IAM, unless --iam-endpoint-url)')
    .option('--iam-endpoint-url <url>', 'IAM endpoint')
    .option('--dry-run', 'build and check the package only (no AWS calls); write it with --out')
    .option('--out <zip>', 'with --dry-run: where to write the package')
    .option('--remove', 'delete the function and the role deploy created')
    .option('--json', 'print one JSON object at the end')
    .action(async (o: DeployCliOptions) => {
      const { deploy, deployDryRun, removeDeployment } = await import('./deploy/deploy.js');
      const { DeployError } = await import('./deploy/errors.js');
      const onStep = o.json ? undefined : (line: string) => process.stderr.write(`deploy: ${line}\n`);
      if (o.out !== undefined && !o.dryRun) throw new DeployError('DEPLOY_OPTIONS', '--out: only with --dry-run (a real deployment uploads the package itself)');
      if (o.dryRun) {
        if (o.out === undefined) throw new DeployError('DEPLOY_OPTIONS', '--dry-run: give --out <zip> for the package');
        const pkg = await deployDryRun(o.out, onStep ? { onStep } : {});
        if (o.json) process.stdout.write(JSON.stringify({ out: o.out, sha256: pkg.sha256, zippedBytes: pkg.zippedBytes, unzippedBytes: pkg.unzippedBytes, files: pkg.files, handler: pkg.handler }) + '\n');
        else process.stdout.write(`${o.out}\nsha256 ${pkg.sha256}\n`);
        return;
      }
      const options = {
        functionName: o.function,
        memoryMb: o.memory,
        timeoutS: o.timeout,
        arch: o.arch,
        runtime: o.runtime,
        alias: o.alias,
        ...(o.roleArn !== undefined ? { roleArn: o.roleArn } : {}),
        ...(o.store !== undefined ? { store: o.store } : {}),
        ...(o.subnets !== undefined ? { subnets: o.subnets } : {}),
        ...(o.securityGroups !== undefined ? { securityGroups: o.securityGroups } : {}),
        ...(o.region !== undefined ? { region: o.region } : {}),
        ...(o.endpointUrl !== undefined ? { endpointUrl: o.endpointUrl } : {}),
        ...(o.iamEndpointUrl !== undefined ? { iamEndpointUrl: o.iamEndpointUrl } : {}),
      };
      if (o.remove) {
        const done = await removeDeployment(options, onStep ? { onStep } : {});
        if (o.json) process.stdout.write(JSON.stringify({ removed: done }) + '\n');
        return;
      }
      const r = await deploy(options, onStep ? { onStep } : {});
      if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(`${r.aliasArn}\nversion ${r.version}\nsha256 ${r.sha256}\n`);
    });
}
