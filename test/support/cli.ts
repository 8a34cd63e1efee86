/**
 * Runs the `cirrus` command as a user does (bin/cirrus.js in a child process), against the build
 * these tests were compiled into, so a side build (tsc --outDir .build-x) tests its own CLI.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** This build's root: test/support/cli.js lives two levels below it. */
export const BUILD_DIR = fileURLToPath(new URL('../../', import.meta.url));
/** bin/cirrus.js sits in the project root, next to the build directory. */
export const CLI = fileURLToPath(new URL('../../../bin/cirrus.js', import.meta.url));

/** Environment for a CLI child: the caller's, pointed at this build, plus `extra`. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, CIRRUS_BUILD_DIR: BUILD_DIR, ...extra };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cirrus ...args` in `cwd` and resolves with its exit code and output (never rejects on exit code). */
export async function runCli(args: readonly string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<CliRun> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: cliEnv(opts.env), timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
