/**
 * Running short-lived commands with captured output. Every shell-out of the test bed goes through here so that
 * failures carry the command line and its stderr.
 */
import { spawn } from 'node:child_process';

/** Output of a finished command. `code` is the exit code (or 128 + signal number when killed by a signal). */
export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Written to the command's stdin, then stdin is closed. Defaults to an empty stdin. */
  input?: string;
  /** Variables added to (not replacing) the test process's environment. */
  env?: Record<string, string>;
  /** Return a non-zero exit code instead of throwing. Defaults to false. */
  allowFailure?: boolean;
  /** Kill the command after this many milliseconds. Defaults to 60 000. */
  timeoutMs?: number;
}

const signalNumbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** Error thrown when a command exits non-zero; keeps the result for callers that want the details. */
export class CommandError extends Error {
  constructor(
    readonly command: string[],
    readonly result: CommandResult,
  ) {
    const detail = (result.stderr.trim() || result.stdout.trim()).slice(-2000);
    super(`command failed (exit ${result.code}): ${command.join(' ')}${detail ? `\n${detail}` : ''}`);
    this.name = 'CommandError';
  }
}

/** Runs `command` (argv, no shell), collects its output and resolves when it exits. */
export function runCommand(command: string[], options: RunCommandOptions = {}): Promise<CommandResult> {
  const [file, ...args] = command;
  if (!file) throw new Error('runCommand: empty command');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: options.env ? { ...process.env, ...options.env } : process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result: CommandResult = {
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        code: code ?? 128 + (signal ? (signalNumbers[signal] ?? 0) : 0),
      };
      if (result.code !== 0 && !options.allowFailure) reject(new CommandError(command, result));
      else resolve(result);
    });
    // A command that exits without reading its stdin makes the write fail with EPIPE; that is not our error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

const checkedTools = new Set<string>();

/** Throws an error naming the missing package for the first tool in `tools` that cannot be run. */
export async function requireTools(tools: { command: string[]; debianPackage: string }[]): Promise<void> {
  for (const { command, debianPackage } of tools) {
    const name = command[0] ?? '';
    if (checkedTools.has(name)) continue;
    try {
      await runCommand(command, { timeoutMs: 10_000 });
    } catch {
      throw new Error(`the test bed needs '${name}' on PATH (Debian package ${debianPackage})`);
    }
    checkedTools.add(name);
  }
}
