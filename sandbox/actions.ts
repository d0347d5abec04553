import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * Runs the action's entry the way the Actions runner does: inputs as INPUT_* variables, and
 * the GITHUB_STATE, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files. Post gets main's state back
 * as STATE_* variables, as the runner passes it.
 */

export interface StepResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  log: string;
  outputs: Record<string, string>;
  summary: string;
}

export interface ActionRunOptions {
  /**
   * The folder holding action.yml, whose `runs.main` and `runs.post` are run with this Node, as
   * the runner does. Default: the working directory.
   */
  actionDir?: string;
  inputs: Record<string, string>;
  env: Record<string, string>;
  /** Called with each chunk of the step's log as it arrives. */
  onLog?: (chunk: string) => void;
}

export class ActionRun {
  readonly dir = mkdtempSync(join(tmpdir(), 'cml-action-'));
  private readonly stateFile = join(this.dir, 'state');

  constructor(private readonly opts: ActionRunOptions) {
    writeFileSync(this.stateFile, '');
  }

  /** Starts main; `child` is exposed so a test can signal it like a cancelled workflow. */
  main(): { child: ChildProcess; done: Promise<StepResult> } {
    return this.step('main', {});
  }

  /** The entry action.yml names for a step. */
  private entry(step: 'main' | 'post'): string {
    const dir = this.opts.actionDir ?? process.cwd();
    const action = parseYaml(readFileSync(join(dir, 'action.yml'), 'utf8')) as {
      runs: { main: string; post?: string };
    };
    const file = action.runs[step];
    if (!file) throw new Error(`action.yml has no runs.${step}`);
    return join(dir, file);
  }

  post(): Promise<StepResult> {
    const state: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.state())) state[`STATE_${k}`] = v;
    return this.step('post', state).done;
  }

  state(): Record<string, string> {
    return parseFileCommands(readFileSync(this.stateFile, 'utf8'));
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private step(
    name: 'main' | 'post',
    extra: Record<string, string>,
  ): { child: ChildProcess; done: Promise<StepResult> } {
    const output = join(this.dir, `${name}.output`);
    const summary = join(this.dir, `${name}.summary`);
    writeFileSync(output, '');
    writeFileSync(summary, '');
    const inputs: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.opts.inputs)) inputs[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = v;
    const child = spawn(process.execPath, [this.entry(name)], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? this.dir,
        GITHUB_ACTIONS: 'true',
        RUNNER_TEMP: this.dir,
        GITHUB_STATE: this.stateFile,
        GITHUB_OUTPUT: output,
        GITHUB_STEP_SUMMARY: summary,
        GITHUB_RUN_ID: '4242',
        ...this.opts.env,
        ...inputs,
        ...extra,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    const onData = (c: Buffer): void => {
      const text = c.toString('utf8');
      log += text;
      this.opts.onLog?.(text);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    const done = new Promise<StepResult>((resolve) => {
      child.on('close', (code, signal) =>
        resolve({
          code,
          signal,
          log,
          outputs: parseFileCommands(readFileSync(output, 'utf8')),
          summary: readFileSync(summary, 'utf8'),
        }),
      );
    });
    return { child, done };
  }
}

/** Parses `key<<DELIMITER\nvalue\nDELIMITER` blocks (and plain `key=value` lines); the last write wins. */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, key, delim] = heredoc;
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) value.push(lines[i]!);
      out[key!] = value.join('\n');
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}
