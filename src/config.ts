import { CLOUD_NAMES, type CloudSpec, descriptorOf } from './clouds/index.js';
import { oneOf } from './config/inputs.js';
import { parseForge } from './config/forge.js';
import { parseMachine } from './config/machine.js';
import { parseRunner } from './config/runner.js';
import { type InputReader, type LaunchSpec, MODES, type Mode, type RunContext } from './config/spec.js';

/**
 * Inputs become one validated launch spec, composed of the machine, the runner, the forge and
 * the cloud's own options (read by the cloud's descriptor). Nothing below this file reads an
 * input, and nothing is created before `parseSpec` has accepted every value.
 */
export * from './config/spec.js';
export { duration, parseTags } from './config/inputs.js';

export function parseSpec(read: InputReader, ctx: RunContext, random?: () => string): LaunchSpec {
  const mode = oneOf('mode', read('mode').trim() || 'launch', MODES) as Mode;
  const name = oneOf('cloud', read('cloud').trim(), CLOUD_NAMES) as CloudSpec['name'];
  const descriptor = descriptorOf(name);
  const machine = parseMachine(read, descriptor);
  const runner = parseRunner(read, random);
  const forge = parseForge(read, ctx);
  const cloud = { name, options: descriptor.options(read, ctx.env, machine) } as CloudSpec;
  return { mode, machine, cloud, runner, forge };
}
