import type { RunnerDownload } from '../bootstrap/render.js';
import type { ForgeScope } from '../config.js';

/**
 * What the lifecycle needs from a forge (GitHub today): runner downloads, credentials for new
 * runners, the list of registered runners, and deleting one. A forge retries its own calls;
 * callers never retry them.
 */
export interface Forge {
  /** The forge's name in messages ("GitHub"). */
  readonly title: string;
  /** The repository or organisation whose runners these are. */
  readonly scope: ForgeScope;
  /** Runner tarballs the forge accepts now, with checksums; asked once per version. */
  downloads(version: string): Promise<RunnerDownloads>;
  /** The runner group for a name or id; the default group when none is given. */
  groupId(group: number | string | undefined): Promise<{ id: number; name: string }>;
  /** A single-use configuration for one ephemeral runner, registered under `name`. */
  jitConfig(name: string, labels: string[], groupId: number): Promise<{ runnerId: number; jitConfig: string }>;
  /** A token that can only register runners (for `single: false`). */
  registrationToken(): Promise<string>;
  /** Every runner registered in the scope, all pages. */
  runners(): Promise<ForgeRunner[]>;
  /** Deletes a registration; one already gone is `gone`. A runner still finishing a job is waited for. */
  deleteRunner(id: number): Promise<'deleted' | 'gone'>;
}

export interface ForgeRunner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels: string[];
}

export interface RunnerDownloads {
  X64?: RunnerDownload;
  ARM64?: RunnerDownload;
  version: string;
}
