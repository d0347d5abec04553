/**
 * A sandbox machine: a startup script run under `bash` in a temporary root, with stand-ins for
 * the system commands a real cloud machine has (`shutdown`, `apt-get`, `systemctl`, `useradd`,
 * `nvidia-smi`, `uname`). Generic: the EC2 fake boots these, and so can any other cloud fake.
 *
 * A machine is "running" from boot until it is powered off, as a real VM is: the startup script
 * ending does not end the machine. It is powered off by `kill()` (the cloud deletes it) or by the
 * script calling `shutdown`/`poweroff`/`halt` (the machine ends itself; the host then calls
 * `onShutdown`, and the cloud fake decides what that means: terminate, stop, ...).
 *
 * Shutdown is signalled through a control file (`$SANDBOX_MACHINE_CONTROL`) that the stand-ins
 * append to and the host polls; no network or extra tools are needed inside the machine.
 *
 * A container (`container: true`, as the Kubernetes fake's kubelet boots them) differs from a VM
 * the way a real one does: it has no power commands, and it ends when its main process exits.
 * Stopping it signals the main process only (a runtime sends SIGTERM to the container's PID 1),
 * then SIGKILLs whatever is left after the grace period.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep, Timers } from './core/index.js';

export interface GpuSpec {
  /** Model as `nvidia-smi` names it, e.g. `Tesla T4`, `NVIDIA A10G`. */
  model: string;
  count: number;
  /** Memory per GPU in MiB, for `nvidia-smi` output. */
  memoryMiB?: number;
}

export interface BootOptions {
  /** The cloud's id for the machine (instance id, VM name, pod). */
  id: string;
  /** Run under `bash` as the startup script (a VM's user data). Ignored when `argv` is given. */
  script?: string;
  /** Run this command instead of `bash <script>` (a container's command and args). */
  argv?: string[];
  /**
   * A container, not a VM: no power stand-ins (`shutdown`, `poweroff`, `halt`, `reboot`,
   * `systemctl`), no `CML_RUNNER_HOME` default, and the machine ends when its main process
   * exits (then `onShutdown` is called, as for a VM that powered itself off).
   */
  container?: true;
  /**
   * Lays out the fresh root before anything runs (volumes, image contents), and may then set
   * the command, environment and working directory, which often name paths under the root.
   */
  prepare?: (root: string) => { argv?: string[]; env?: Record<string, string>; cwd?: string } | undefined;
  env?: Record<string, string>;
  gpu?: GpuSpec;
  /** What `uname -m` reports: `x86_64` (default) or `arm64` (reported as `aarch64`). */
  arch?: 'x86_64' | 'arm64';
  /** Called once when the machine powers itself off (`shutdown -h`, `poweroff`, `halt`), after its processes are gone. */
  onShutdown: () => void;
  /** The machine never runs its script: it stays up and silent (a boot that hangs). */
  failBoot?: boolean;
  /** The script starts this many milliseconds after boot (a slow boot); the banner shows at once. */
  bootDelayMs?: number;
  /** Length of a `shutdown +N` minute in milliseconds (default 60000); tests shorten it. */
  minuteMs?: number;
  /** Lines printed to the console before the script's output (a boot banner). */
  banner?: string[];
}

export interface Machine {
  readonly id: string;
  /** The temporary root (gone after the machine is powered off). */
  readonly root: string;
  /** Powered on: from boot until `kill()` or a shutdown. */
  readonly running: boolean;
  /** The console: the script's stdout and stderr, interleaved, last 1 MiB. */
  console(): string;
  /** The console's raw bytes (last 1 MiB). */
  consoleBytes(): Buffer;
  /** Pids of the machine's processes still alive (zombies excluded). */
  processes(): number[];
  /**
   * SIGKILLs the stand-in runner's listener (`Runner.Listener`) and every process it started
   * (its jobs), as if the runner crashed; the rest of the machine carries on. False when no
   * listener runs on the machine.
   */
  crashRunner(): boolean;
  /** Exit code of the startup script, once it has ended (`null` if it was killed by a signal). */
  readonly scriptExit: Promise<number | null>;
  /** How the main process (script or `argv`) ended: its exit code, or the signal that killed it. */
  readonly mainExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** A `shutdown +N` that is pending: when it fires, in epoch ms. */
  readonly scheduledShutdown: number | undefined;
  /**
   * Power off: SIGTERM to the process group (a container: to its main process only), SIGKILL
   * after `graceMs` (default ~1 s); removes the temporary root.
   */
  kill(opts?: { graceMs?: number }): Promise<void>;
  /** Resolves when the machine is powered off (by `kill()` or by a shutdown). */
  readonly exited: Promise<void>;
}

const CONSOLE_CAP = 1024 * 1024;
const POLL_MS = 50;

/** Boots a machine. The script starts at once (or after `bootDelayMs`), unless `failBoot`. */
export function bootMachine(opts: BootOptions): Machine {
  const m = new BootedMachine(opts);
  return {
    id: opts.id,
    root: m.root,
    get running() {
      return m.running;
    },
    console: () => m.console.text(),
    consoleBytes: () => m.console.bytes(),
    processes: () => m.processes(),
    crashRunner: () => m.crashRunner(),
    scriptExit: m.scriptExit,
    mainExit: m.mainExit,
    get scheduledShutdown() {
      return m.scheduledShutdown;
    },
    kill: (how) => m.stop(how),
    exited: m.exited,
  };
}

/** Where a machine's parts live under its temporary root. */
interface MachineRoot {
  root: string;
  /** The stand-in commands, first on the machine's PATH. */
  bin: string;
  /** The control file the power stand-ins append to and the host polls. */
  control: string;
  home: string;
  runnerHome: string;
  scriptPath: string;
}

/**
 * What a VM's startup script gets: what the real boot gives, and only the sandbox's own additions.
 *
 * A real VM runs user data as a boot service, as root with umask 022 and only PATH: cloud-init's
 * scripts_user module, in the final stage's cloud_final_modules, on EC2 and Azure
 * (https://access.redhat.com/documentation/en-us/red_hat_enterprise_linux/9/html/configuring_and_managing_cloud-init_for_rhel_9/cloud-init-operates-in-stages_introduction-to-cloud-init),
 * the guest agent's google_metadata_script_runner on Compute Engine
 * (https://cloud.google.com/compute/docs/instances/startup-scripts, 2025-12-15). systemd sets HOME, USER,
 * LOGNAME and SHELL only for a unit with User= (https://github.com/systemd/systemd/issues/10915,
 * 2018), and neither unit has one; startup scripts are reported without HOME on Compute Engine
 * (https://github.com/spinnaker/spinnaker/pull/1118, 2016) and under cloud-init
 * (https://github.com/openfaas/faasd/issues/282, 2022), and runners started from them run jobs
 * where `git config --global` fails with "fatal: $HOME not set"
 * (https://github.com/Cyclenerd/hcloud-github-runner/issues/4, 2025;
 * https://github.com/peter-evans/create-pull-request/issues/2181, 2023), since actions/runner passes
 * its own environment to every step (https://github.com/actions/runner/issues/1864, 2022).
 *
 * The sandbox's additions, each needed for a machine that shares the host:
 * - PATH starts with the stand-ins (`shutdown`, `getent`, `nvidia-smi`, ...), then the host's.
 * - TMPDIR: the machine's own /tmp, removed with it (a real VM's /tmp is its own).
 * - CML_RUNNER_HOME: the runner home inside the machine's root, since the host's /opt is not the
 *   machine's (on a real VM the script's default, /opt/cml-runner).
 * - CML_RUNNER_SUDOERS: the machine's own sudoers.d (on a real VM /etc/sudoers.d), for the same reason.
 * The cloud fakes add their own (`BootOptions.env`): the metadata endpoints a real machine
 * reaches at 169.254.169.254, the sandbox CA, the machine's ids; and the markers come last.
 */
function vmBootEnvironment(layout: MachineRoot): Record<string, string> {
  return {
    PATH: `${layout.bin}:${process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
    TMPDIR: path.join(layout.root, 'tmp'),
    CML_RUNNER_HOME: layout.runnerHome,
    CML_RUNNER_SUDOERS: path.join(layout.root, 'etc', 'sudoers.d'),
  };
}

/** A container's defaults, under what its image and pod spec set (`prepare`). */
function containerDefaults(layout: MachineRoot): Record<string, string> {
  return {
    PATH: `${layout.bin}:${process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
    HOME: layout.home,
    USER: 'root',
    LOGNAME: 'root',
    SHELL: '/bin/bash',
    LANG: 'C.UTF-8',
    TMPDIR: path.join(layout.root, 'tmp'),
  };
}

/** Lays out a fresh root: home, `/opt`, `/tmp`, the stand-ins, the control file and the startup script. */
function prepareRoot(opts: BootOptions, minuteMs: number): MachineRoot {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `sandbox-machine-${safe(opts.id)}-`));
  const layout: MachineRoot = {
    root,
    bin: path.join(root, '.sandbox', 'bin'),
    control: path.join(root, '.sandbox', 'control'),
    home: path.join(root, 'root'),
    runnerHome: path.join(root, 'opt', 'cml-runner'),
    scriptPath: path.join(root, '.sandbox', 'user-data.sh'),
  };
  fs.mkdirSync(layout.bin, { recursive: true });
  // Root's home is root's alone, as on a real VM.
  fs.mkdirSync(layout.home, { recursive: true, mode: 0o700 });
  fs.mkdirSync(path.join(root, 'opt'), { recursive: true });
  fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
  fs.mkdirSync(path.join(root, 'etc', 'sudoers.d'), { recursive: true });
  fs.mkdirSync(path.join(root, 'home'), { mode: 0o755 });
  // The machine's other users reach what a real VM lets them: its root, /opt, and a shared /tmp.
  fs.chmodSync(root, 0o755);
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  // Users the useradd stand-in makes get uids from here: unused on the host, and one range per machine.
  fs.writeFileSync(path.join(root, '.sandbox', 'uid-base'), String(300_000 + Math.floor(Math.random() * 9000) * 100));
  fs.writeFileSync(layout.control, '');
  writeStandIns(layout.bin, opts);
  fs.writeFileSync(layout.scriptPath, opts.script ?? '', { mode: 0o700 });
  // Stand-ins report the time of a scheduled shutdown in "minutes" that tests may shorten.
  fs.writeFileSync(path.join(root, '.sandbox', 'minute-ms'), String(minuteMs));
  return layout;
}

/** A machine's console: its main process's stdout and stderr, interleaved, last `CONSOLE_CAP` bytes. */
class MachineConsole {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  /** A listener for the process's pipes, hence bound. */
  readonly append = (b: Buffer): void => {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > CONSOLE_CAP && this.chunks.length > 1) {
      this.size -= this.chunks.shift()!.length;
    }
  };

  note(line: string): void {
    this.append(Buffer.from(line));
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  text(): string {
    return this.bytes().toString('utf8');
  }
}

type MainExit = { code: number | null; signal: NodeJS.Signals | null };

/**
 * One booted machine's state: its root, its main process, the control file it is powered off
 * through, and its own delayed work (a slow boot, a `shutdown +N`), which ends with the machine.
 */
class BootedMachine {
  readonly root: string;
  readonly console = new MachineConsole();
  readonly exited: Promise<void>;
  readonly mainExit: Promise<MainExit>;
  readonly scriptExit: Promise<number | null>;
  running = true;

  private readonly layout: MachineRoot;
  private readonly container: boolean;
  // Every process of the machine inherits this; it finds the ones that leave the process group.
  private readonly marker: string;
  private readonly timers = new Timers();
  private resolveExited: () => void = () => {};
  private resolveMain: (how: MainExit) => void = () => {};
  private child: ChildProcess | undefined;
  private pgid: number | undefined;
  private scheduled: { at: number; timer: NodeJS.Timeout } | undefined;
  private controlOffset = 0;
  private killing: Promise<void> | undefined;
  private readonly poll: NodeJS.Timeout;

  constructor(private readonly opts: BootOptions) {
    this.layout = prepareRoot(opts, opts.minuteMs ?? 60_000);
    this.root = this.layout.root;
    this.container = opts.container === true;
    this.marker = `SANDBOX_MACHINE_ROOT=${this.root}`;
    this.exited = new Promise<void>((r) => (this.resolveExited = r));
    this.mainExit = new Promise<MainExit>((r) => (this.resolveMain = r));
    this.scriptExit = this.mainExit.then((how) => how.code);
    if (!opts.failBoot) for (const line of opts.banner ?? []) this.console.note(`${line}\n`);
    this.boot();
    this.poll = setInterval(() => this.readControl(), POLL_MS);
    this.poll.unref();
  }

  get scheduledShutdown(): number | undefined {
    return this.scheduled?.at;
  }

  // --- Starting and supervising the main process ---

  private boot(): void {
    if (this.opts.failBoot) {
      // Never resolves its script: the boot hung before user data ran.
    } else if (this.opts.bootDelayMs !== undefined && this.opts.bootDelayMs > 0) {
      this.timers.later(this.opts.bootDelayMs, () => {
        if (this.running) this.start();
      });
    } else {
      this.start();
    }
  }

  private start(): void {
    const { opts, layout, container } = this;
    const prepared = opts.prepare?.(this.root) ?? {};
    const env: Record<string, string> = {
      ...(container ? containerDefaults(layout) : vmBootEnvironment(layout)),
      ...opts.env,
      ...prepared.env,
      // The markers come last: they are how the host finds the machine's processes.
      SANDBOX_MACHINE_ID: opts.id,
      SANDBOX_MACHINE_ROOT: this.root,
      SANDBOX_MACHINE_CONTROL: layout.control,
      // Set when the sandbox runs as root, so the machine's users can get uids of their own.
      ...(process.getuid?.() === 0 ? { SANDBOX_HOST_ROOT: '1' } : {}),
    };
    const command = prepared.argv ?? opts.argv ?? ['bash', layout.scriptPath];
    // A VM's boot service starts with umask 022 whatever the host's is; a container keeps the runtime's.
    const argv = container ? command : ['bash', '-c', 'umask 022 && exec "$@"', 'machine-boot', ...command];
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: prepared.cwd ?? this.root,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.pgid = child.pid;
    child.stdout?.on('data', this.console.append);
    child.stderr?.on('data', this.console.append);
    this.supervise(child, command);
  }

  private supervise(child: ChildProcess, argv: string[]): void {
    const { container } = this;
    const pipes = [child.stdout, child.stderr];
    child.on('error', (err) => {
      this.console.note(
        container
          ? `exec ${argv[0]}: ${err.message}\n`
          : `[machine] could not start the startup script: ${err.message}\n`,
      );
      // A command that cannot start exits 127 as a shell's would; a container then ends.
      this.resolveMain({ code: container ? 127 : null, signal: null });
      if (container) void this.endContainer();
    });
    child.on('exit', (code, signal) => {
      // 'exit' can come before the script's last output is read from its pipes: the note waits
      // for both to end, or a moment when a background process (the runner) keeps them open.
      if (this.running && !container) {
        const drained = Promise.all(
          pipes.map((p) => (p && !p.readableEnded ? new Promise((r) => p.once('end', r)) : undefined)),
        );
        void Promise.race([drained, sleep(100)]).then(() => {
          this.console.note(
            `[machine] startup script exited with ${code === null ? `signal ${signal}` : `status ${code}`}\n`,
          );
        });
      }
      this.resolveMain({ code, signal });
      if (container) void this.endContainer();
    });
  }

  /** A container's main process ended: what is left of it is killed at once, as when PID 1 exits. */
  private async endContainer(): Promise<void> {
    if (!this.running) return;
    await this.stop({ graceMs: 0 });
    this.opts.onShutdown();
  }

  // --- Power: the control file, a scheduled shutdown, powering off ---

  private readControl(): void {
    if (!this.running) return;
    let data: Buffer;
    try {
      data = fs.readFileSync(this.layout.control);
    } catch {
      return;
    }
    if (data.length <= this.controlOffset) return;
    const text = data.subarray(this.controlOffset).toString('utf8');
    const complete = text.lastIndexOf('\n');
    if (complete < 0) return;
    this.controlOffset += Buffer.byteLength(text.slice(0, complete + 1));
    for (const line of text.slice(0, complete).split('\n')) this.handleControl(line.trim());
  }

  private handleControl(line: string): void {
    const [verb, arg] = line.split(/\s+/);
    if (verb === 'poweroff') {
      void this.powerOff();
    } else if (verb === 'schedule' && arg) {
      const at = Number(arg);
      this.cancelScheduled();
      const timer = this.timers.later(at - Date.now(), () => void this.powerOff());
      this.scheduled = { at, timer };
    } else if (verb === 'cancel') {
      this.cancelScheduled();
    }
  }

  private cancelScheduled(): void {
    if (this.scheduled) this.timers.cancel(this.scheduled.timer);
    this.scheduled = undefined;
  }

  private async powerOff(): Promise<void> {
    if (!this.running) return;
    this.console.note('[machine] reached target Power-Off.\n');
    await this.stop();
    this.opts.onShutdown();
  }

  /** Powers off once: stops the polling and the machine's timers, ends its processes, removes its root. */
  stop(how: { graceMs?: number } = {}): Promise<void> {
    if (this.killing) return this.killing;
    this.running = false;
    clearInterval(this.poll);
    // Cancels a slow boot that has not started and a pending `shutdown +N`.
    this.timers.close();
    this.scheduled = undefined;
    this.killing = (async () => {
      if (this.pgid !== undefined) await killMachine(this.pgid, this.marker, how.graceMs ?? 1000, this.container);
      if (this.opts.failBoot || this.child === undefined) this.resolveMain({ code: null, signal: null });
      fs.rmSync(this.root, { recursive: true, force: true });
      this.resolveExited();
    })();
    return this.killing;
  }

  // --- Process bookkeeping ---

  processes(): number[] {
    return this.pgid === undefined ? [] : machinePids(this.pgid, this.marker);
  }

  crashRunner(): boolean {
    return this.pgid === undefined || !this.running ? false : crashRunner(machinePids(this.pgid, this.marker));
  }
}

/** Every machine booted by one cloud fake, with the `failBoot`, `delayBoot` and `crashRunner` switches the tests use. */
export class MachineFleet {
  private failNext = 0;
  private readonly delays: number[] = [];
  private readonly booted: Machine[] = [];

  constructor(private readonly defaults: { minuteMs?: number } = {}) {}

  /** The next `n` machines never run their script (they stay up, silent). */
  failBoot(n = 1): void {
    this.failNext += n;
  }

  /** The next `n` machines run their script `ms` after boot (a slow boot). */
  delayBoot(n: number, ms: number): void {
    for (let i = 0; i < n; i++) this.delays.push(ms);
  }

  /** Crashes the runner on a machine (see `Machine.crashRunner`); false when it runs none. */
  crashRunner(machineId: string): boolean {
    const m = this.booted.findLast((b) => b.id === machineId && b.running);
    return m?.crashRunner() ?? false;
  }

  boot(opts: BootOptions): Machine {
    let failBoot = opts.failBoot ?? false;
    if (this.failNext > 0) {
      this.failNext -= 1;
      failBoot = true;
    }
    const delay = this.delays.shift();
    const m = bootMachine({
      minuteMs: this.defaults.minuteMs,
      ...opts,
      failBoot,
      ...(delay !== undefined ? { bootDelayMs: delay } : {}),
    });
    this.booted.push(m);
    return m;
  }

  all(): readonly Machine[] {
    return this.booted;
  }

  /** Machines still powered on, or with processes still alive. */
  live(): Machine[] {
    return this.booted.filter((m) => m.running || m.processes().length > 0);
  }

  async killAll(): Promise<void> {
    await Promise.all(this.booted.map((m) => m.kill()));
  }
}

/**
 * Live pids of a machine, read from /proc (zombies excluded): its process group, plus any
 * process that left the group (`setsid`, a `detached` spawn) but still carries the machine's
 * marker in its environment.
 */
export function machinePids(pgid: number, marker?: string): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return isGroupSignalable(pgid) ? [pgid] : [];
  }
  const needle = marker === undefined ? undefined : Buffer.from(`${marker}\0`);
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    if (state === 'Z' || state === 'X') continue;
    if (Number(rest[2]) === pgid) {
      pids.push(Number(e));
      continue;
    }
    if (needle) {
      try {
        if (fs.readFileSync(`/proc/${e}/environ`).includes(needle)) pids.push(Number(e));
      } catch {
        // Gone, or not ours to read.
      }
    }
  }
  return pids;
}

/**
 * SIGKILLs, among a machine's pids, the runner's listener and its descendants (found through the
 * parent pids in /proc). Returns whether a listener was found.
 */
function crashRunner(pids: number[]): boolean {
  const parent = new Map<number, number>();
  const listeners: number[] = [];
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      parent.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('Runner.Listener')) listeners.push(pid);
    } catch {
      // Gone meanwhile.
    }
  }
  if (listeners.length === 0) return false;
  const doomed = new Set(listeners);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!doomed.has(pid) && doomed.has(ppid)) {
        doomed.add(pid);
        grew = true;
      }
    }
  }
  for (const pid of doomed) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  return true;
}

/** Live pids of a process group. */
export function groupPids(pgid: number): number[] {
  return machinePids(pgid);
}

function isGroupSignalable(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function killMachine(pgid: number, marker: string, graceMs: number, container: boolean): Promise<void> {
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pgid, sig);
    } catch {
      // The group is already gone.
    }
    for (const pid of machinePids(pgid, marker)) {
      try {
        process.kill(pid, sig);
      } catch {
        // Gone.
      }
    }
  };
  if (machinePids(pgid, marker).length === 0) return;
  if (graceMs > 0) {
    if (container) {
      // A runtime stops a container by signalling its PID 1; when that exits, the rest go too.
      try {
        process.kill(pgid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    } else {
      signal('SIGTERM');
    }
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      const left = machinePids(pgid, marker);
      if (left.length === 0 || (container && !left.includes(pgid))) break;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  if (machinePids(pgid, marker).length === 0) return;
  signal('SIGKILL');
  const hard = Date.now() + 2000;
  while (Date.now() < hard && machinePids(pgid, marker).length > 0) {
    await new Promise((r) => setTimeout(r, 25));
    signal('SIGKILL');
  }
}

function safe(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
}

function writeStandIns(bin: string, opts: BootOptions): void {
  const write = (name: string, body: string): void => {
    fs.writeFileSync(path.join(bin, name), `#!/bin/bash\n${body}`, { mode: 0o755 });
  };

  if (opts.container) {
    // A container has no init and no power commands. The host has them further down PATH, so
    // they are shadowed by ones that are not found, as in a container image.
    for (const name of ['shutdown', 'poweroff', 'halt', 'reboot', 'systemctl']) {
      write(name, `echo "bash: ${name}: command not found" >&2\nexit 127\n`);
    }
  } else {
    writePowerStandIns(write);
    writeIptables(write);
  }

  write('apt-get', `echo "[machine] apt-get $* (stand-in)" >&2\nexit 0\n`);
  write('apt', `echo "[machine] apt $* (stand-in)" >&2\nexit 0\n`);
  writeUserStandIns(write);
  const machineArch = opts.arch === 'arm64' ? 'aarch64' : 'x86_64';
  write(
    'uname',
    `# The machine's architecture is the instance type's, not the host's.
real_path="\${PATH#*:}"
case "$1" in
  -m|-p|-i|--machine) echo "${machineArch}" ;;
  *) out="$(PATH="$real_path" uname "$@")"; echo "\${out//$(PATH="$real_path" uname -m)/${machineArch}}" ;;
esac
`,
  );
  write('arch', `echo "${machineArch}"\n`);
  if (opts.gpu) writeNvidiaSmi(bin, opts.gpu);
}

/** Shell for the user stand-ins: `user_entry NAME-OR-UID` reads the machine's users file. */
const USER_LOOKUP = `users="$SANDBOX_MACHINE_ROOT/.sandbox/users"
real_path="\${PATH#*:}"
# user_entry NAME-OR-UID: sets u_name u_uid u_home from the machine's users; fails for others.
user_entry() {
  [[ -f "$users" ]] || return 1
  local n i h
  while IFS=: read -r n i h; do
    if [[ "$1" == "$n" || "$1" == "$i" ]]; then u_name="$n" u_uid="$i" u_home="$h"; return 0; fi
  done <"$users"
  return 1
}
`;

/**
 * A VM's `iptables`, for the one rule the startup script adds: `-A|-I OUTPUT -p tcp -d ADDR [--dport P]
 * -m owner --uid-owner USER -j REJECT` (long forms too). Only root may add it; the user becomes its
 * uid from the machine's users, and the rule is recorded in `.sandbox/iptables` (`ADDR PORT UID`, `-`
 * for any port), which the cloud fake's metadata service enforces. Anything else is refused with
 * iptables' words (iptables-nft 1.8.10, as Ubuntu 24.04 has it).
 */
function writeIptables(write: (name: string, body: string) => void): void {
  write(
    'iptables',
    `${USER_LOOKUP}v='iptables v1.8.10 (nf_tables)'
bad() { echo "$v: $1" >&2; echo "Try \\\`iptables -h' or 'iptables --help' for more information." >&2; exit 2; }
me="$(PATH="$real_path" id -u)"
if user_entry "$me"; then
  echo "$v: Could not fetch rule set generation id: Permission denied (you must be root)" >&2
  exit 4
fi
[[ $# -gt 0 ]] || bad "no command specified"
chain="" proto="" dest="" dport="-" match="" uid="" target=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -A|--append|-I|--insert) [[ -z "$chain" && $# -ge 2 ]] || bad "unknown option \\"$1\\""; chain="$2"; shift 2 ;;
    -p|--proto|--protocol) [[ $# -ge 2 ]] || bad "option \\"$1\\" requires an argument"; proto="$2"; shift 2 ;;
    -d|--destination) [[ $# -ge 2 ]] || bad "option \\"$1\\" requires an argument"; dest="$2"; shift 2 ;;
    --dport|--destination-port)
      [[ "$proto" == tcp ]] || bad "unknown option \\"$1\\""
      [[ "\${2:-}" =~ ^[0-9]+$ && "$2" -le 65535 ]] || bad "invalid port/service \\\`\${2:-}' specified"
      dport="$2"; shift 2 ;;
    -m|--match) [[ "\${2:-}" == owner ]] || bad "Couldn't load match \\\`\${2:-}':No such file or directory"
      match=owner; shift 2 ;;
    --uid-owner)
      [[ "$match" == owner ]] || bad "unknown option \\"$1\\""
      if [[ "\${2:-}" == root || "\${2:-}" == 0 ]]; then uid="$me"
      elif user_entry "\${2:-}"; then uid="$u_uid"
      else bad "Bad value for option \\"--uid-owner\\", or out of range (\\"\${2:-}\\")."; fi
      shift 2 ;;
    -j|--jump) [[ "\${2:-}" == REJECT ]] || bad "Couldn't load target \\\`\${2:-}':No such file or directory"
      target=REJECT; shift 2 ;;
    *) bad "unknown option \\"$1\\"" ;;
  esac
done
[[ "$chain" == OUTPUT ]] || { echo "$v: Chain '$chain' does not exist" >&2; exit 1; }
[[ "$proto" == tcp && "$dest" =~ ^[0-9]+(\\.[0-9]+){3}$ && -n "$uid" && "$target" == REJECT ]] ||
  bad "the sandbox's iptables takes only -p tcp -d ADDR [--dport P] -m owner --uid-owner USER -j REJECT"
echo "$dest $dport $uid" >>"$SANDBOX_MACHINE_ROOT/.sandbox/iptables"
`,
  );
}

/**
 * Users: `useradd` makes a user of the machine with a uid of its own, and `runuser` runs a command as
 * that user for real (setpriv) when the sandbox runs as root, so a job cannot signal the startup
 * script's timers or read its root-only files, as on a real VM. Users live in `.sandbox/users`
 * (`name:uid:home`); `id`, `getent passwd` and `chown` answer from it, the rest is the host's. Without
 * root the sandbox cannot change uid: `runuser` then says so on the console and runs the command as
 * the host user. `sudo` grants a user the machine wrote a sudoers file for (root's, mode 440, in
 * `$CML_RUNNER_SUDOERS`), but cannot make it root: a granted command runs as the caller.
 */
function writeUserStandIns(write: (name: string, body: string) => void): void {
  const lookup = USER_LOOKUP;
  write(
    'useradd',
    `${lookup}echo "[machine] useradd $* (stand-in)" >&2
name="\${*: -1}" create=0
for a in "$@"; do case "$a" in -m|--create-home) create=1 ;; esac; done
if user_entry "$name"; then echo "useradd: user '$name' already exists" >&2; exit 9; fi
base="$(cat "$SANDBOX_MACHINE_ROOT/.sandbox/uid-base")"
count=0; [[ -f "$users" ]] && count="$(wc -l <"$users")"
uid=$((base + count)) home="$SANDBOX_MACHINE_ROOT/home/$name"
echo "$name:$uid:$home" >>"$users"
chmod 644 "$users"
if [[ $create -eq 1 ]]; then
  mkdir -p -m 700 "$home"
  [[ -z "$SANDBOX_HOST_ROOT" ]] || PATH="$real_path" chown "$uid:$uid" "$home"
fi
exit 0
`,
  );
  write('usermod', `echo "[machine] usermod $* (stand-in)" >&2\nexit 0\n`);
  write(
    'chown',
    `${lookup}# Names of the machine's users become their uids; without root the sandbox keeps its owner.
[[ -n "$SANDBOX_HOST_ROOT" ]] || { echo "[machine] chown $* (stand-in: the sandbox is not root)" >&2; exit 0; }
args=()
for a in "$@"; do
  if [[ "$a" != -* && "$a" != /* && "$a" =~ ^([^:.]*)([:.]?)(.*)$ ]]; then
    owner="\${BASH_REMATCH[1]}" sep="\${BASH_REMATCH[2]}" group="\${BASH_REMATCH[3]}"
    if user_entry "$owner" 2>/dev/null; then owner="$u_uid"; fi
    if [[ -n "$group" ]] && user_entry "$group" 2>/dev/null; then group="$u_uid"; fi
    a="$owner$sep$group"
  fi
  args+=("$a")
done
PATH="$real_path" exec chown "\${args[@]}"
`,
  );
  write(
    'id',
    `${lookup}# The machine's users exist here; everything else is the host's answer.
who="\${*: -1}"
[[ $# -eq 0 || "$who" == -* ]] && who="$(PATH="$real_path" id -u)"
if user_entry "$who"; then
  case "\${1:-}" in
    -u|-g|-ru|-rg) echo "$u_uid" ;;
    -un|-nu|-gn|-ng) echo "$u_name" ;;
    *) echo "uid=$u_uid($u_name) gid=$u_uid($u_name) groups=$u_uid($u_name)" ;;
  esac
  exit 0
fi
PATH="$real_path" exec id "$@"
`,
  );
  write(
    'getent',
    `${lookup}# getent passwd [KEY...]: the machine's password database. Its root (the host user the sandbox
# runs as) has its home in the machine's root, as do the machine's users; other keys and databases
# are the host's answer.
[[ "\${1:-}" == passwd ]] || PATH="$real_path" exec getent "$@"
shift
me="$(PATH="$real_path" id -un)"
entries=("$me:x:$(PATH="$real_path" id -u):$(PATH="$real_path" id -g):$me:$SANDBOX_MACHINE_ROOT/root:/bin/bash")
if [[ -f "$users" ]]; then
  while IFS=: read -r n i h; do entries+=("$n:x:$i:$i::$h:/bin/bash"); done <"$users"
fi
if [[ $# -eq 0 ]]; then printf '%s\\n' "\${entries[@]}"; exit 0; fi
status=0
for key in "$@"; do
  found=""
  for e in "\${entries[@]}"; do
    IFS=: read -r name _ uid _ <<<"$e"
    if [[ "$key" == "$name" || "$key" == "$uid" ]]; then found="$e"; break; fi
  done
  if [[ -n "$found" ]]; then echo "$found"; else PATH="$real_path" getent passwd "$key" || status=2; fi
done
exit "$status"
`,
  );
  write(
    'runuser',
    `${lookup}# runuser -u USER -- CMD... | runuser -l USER -c CMD: HOME, SHELL, USER and LOGNAME become the
# user's, the rest of the environment stays, as util-linux's runuser does for a user other than root.
user="" cmd=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -u) user="$2"; shift 2 ;;
    -l) user="$2"; shift 2 ;;
    -c) cmd="$2"; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[[ -n "$cmd" ]] && set -- bash -c "$cmd"
user_entry "$user" || { echo "runuser: user $user does not exist or the user entry does not contain all the required fields" >&2; exit 1; }
export HOME="$u_home" USER="$u_name" LOGNAME="$u_name" SHELL=/bin/bash
if [[ -z "$SANDBOX_HOST_ROOT" ]]; then
  echo "[machine] runuser: the sandbox is not root, so $u_name runs as the host user" >&2
  exec "$@"
fi
setpriv="$(PATH="$real_path" command -v setpriv)"
exec "$setpriv" --reuid="$u_uid" --regid="$u_uid" --clear-groups -- "$@"
`,
  );
  write(
    'sudo',
    `${lookup}# sudo [-u USER] [-E] [-H] [-n] [--] CMD...: the host user (the machine's root) runs CMD; another
# user only if the machine has a sudoers file for it, and then still as itself.
while [[ $# -gt 0 ]]; do
  case "$1" in
    -u|-g) shift 2 ;;
    -E|-H|-n|-i|-S|--preserve-env*) shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
if user_entry "$(PATH="$real_path" id -u)"; then
  # The file is root's (mode 440), as real sudoers files are: only its owner and mode can be seen.
  if [[ "$(stat -c '%u %a' -- "$CML_RUNNER_SUDOERS/$u_name" 2>/dev/null)" != "0 440" ]]; then
    echo "sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper" >&2
    echo "sudo: a password is required" >&2
    exit 1
  fi
  echo "[machine] sudo: granted to $u_name by the sudoers file; the sandbox runs it as $u_name" >&2
fi
exec "$@"
`,
  );
}

function writeNvidiaSmi(bin: string, gpu: GpuSpec): void {
  const mem = gpu.memoryMiB ?? 16384;
  const names = Array.from({ length: gpu.count }, (_, i) => i);
  const list = names.map(
    (i) => `GPU ${i}: ${gpu.model} (UUID: GPU-5a4d${String(i).padStart(4, '0')}-sand-box0-0000-00000000000${i})`,
  );
  const table = [
    `+-----------------------------------------------------------------------------------------+`,
    `| NVIDIA-SMI 570.133.20             Driver Version: 570.133.20     CUDA Version: 12.8     |`,
    `|-----------------------------------------+------------------------+----------------------+`,
    `| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |`,
    `| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |`,
    `|=========================================+========================+======================|`,
    ...names.flatMap((i) => [
      `| ${String(i).padStart(3)}  ${gpu.model.padEnd(26).slice(0, 26)}          On | 00000000:00:${(0x1e + i).toString(16).toUpperCase().padStart(2, '0')}.0 Off |                    0 |`,
      `| N/A   34C    P8             12W /  70W  |       1MiB / ${String(mem).padStart(6)}MiB |      0%      Default |`,
      `+-----------------------------------------+------------------------+----------------------+`,
    ]),
    ``,
    `+-----------------------------------------------------------------------------------------+`,
    `| Processes:                                                                              |`,
    `|  No running processes found                                                             |`,
    `+-----------------------------------------------------------------------------------------+`,
  ];
  const body = `echo "[machine] nvidia-smi $* (stand-in: ${gpu.count}x ${gpu.model})" >&2
case "$1" in
  -L|--list-gpus)
    cat <<'EOF'
${list.join('\n')}
EOF
    ;;
  --query-gpu=*)
    fields="\${1#--query-gpu=}"
    header=1
    for a in "$@"; do [[ "$a" == *noheader* ]] && header=0; done
    [[ $header -eq 1 ]] && echo "$fields"
    for i in $(seq 0 $(( ${gpu.count} - 1 ))); do
      line=""
      IFS=',' read -ra fs <<<"$fields"
      for f in "\${fs[@]}"; do
        case "$f" in
          name) v="${gpu.model}" ;;
          count) v="${gpu.count}" ;;
          index) v="$i" ;;
          memory.total) v="${mem} MiB" ;;
          driver_version) v="570.133.20" ;;
          uuid) v="GPU-5a4d000$i-sand-box0-0000-00000000000$i" ;;
          *) v="[N/A]" ;;
        esac
        line="\${line:+$line, }$v"
      done
      echo "$line"
    done
    ;;
  *)
    cat <<'EOF'
${table.join('\n')}
EOF
    ;;
esac
exit 0
`;
  fs.writeFileSync(path.join(bin, 'nvidia-smi'), `#!/bin/bash\n${body}`, { mode: 0o755 });
}

/** A VM's power commands: they append to the control file the host polls. */
function writePowerStandIns(write: (name: string, body: string) => void): void {
  const powerOff = `printf 'poweroff\\n' >>"$SANDBOX_MACHINE_CONTROL"\n`;
  // Only root may power a machine off; the runner's user is refused, as logind refuses it.
  const unprivileged = `if [[ -n "\${SANDBOX_HOST_ROOT:-}" && "$(id -u)" != 0 ]]; then
  echo "Failed to power off system via logind: Access denied" >&2
  exit 1
fi
`;
  write(
    'shutdown',
    `# shutdown [-h|-P|-H|-r|-c|-k] [TIME] [MESSAGE]: TIME is now, +MINUTES or HH:MM.
reboot=0 cancel=0 when=""
for a in "$@"; do
  case "$a" in
    -r|--reboot) reboot=1 ;;
    -c) cancel=1 ;;
    -h|-P|-H|--poweroff|--halt|-k|--no-wall) ;;
    now|+[0-9]*|[0-9]*:[0-9]*) [[ -z "$when" ]] && when="$a" ;;
  esac
done
echo "[machine] shutdown $* (stand-in)" >&2
${unprivileged}if [[ $cancel -eq 1 ]]; then printf 'cancel\\n' >>"$SANDBOX_MACHINE_CONTROL"; exit 0; fi
if [[ $reboot -eq 1 ]]; then echo "[machine] reboot ignored in the sandbox" >&2; exit 0; fi
minute_ms="$(cat "$SANDBOX_MACHINE_ROOT/.sandbox/minute-ms" 2>/dev/null || echo 60000)"
now_ms=$(( $(date +%s%N) / 1000000 ))
case "\${when:-+1}" in
  now|+0) ${powerOff.trim()} ;;
  +*) mins="\${when#+}"; printf 'schedule %s\\n' $(( now_ms + mins * minute_ms )) >>"$SANDBOX_MACHINE_CONTROL"
      echo "Shutdown scheduled in \${mins} minute(s), use 'shutdown -c' to cancel." ;;
  *:*) target=$(date -d "$when" +%s 2>/dev/null) || { echo "shutdown: invalid time: $when" >&2; exit 1; }
       now_s=$(date +%s); [[ $target -le $now_s ]] && target=$(( target + 86400 ))
       printf 'schedule %s\\n' $(( now_ms + (target - now_s) * 1000 * minute_ms / 60000 )) >>"$SANDBOX_MACHINE_CONTROL" ;;
esac
exit 0
`,
  );
  for (const name of ['poweroff', 'halt']) {
    write(name, `echo "[machine] ${name} $* (stand-in)" >&2\n${unprivileged}${powerOff}exit 0\n`);
  }
  write('reboot', `echo "[machine] reboot $* (stand-in, ignored)" >&2\nexit 0\n`);

  write(
    'systemctl',
    `echo "[machine] systemctl $* (stand-in)" >&2
case "$1" in
  is-active) echo inactive; exit 3 ;;
  status) echo "Unit $2 could not be found."; exit 4 ;;
esac
exit 0
`,
  );
}
