// The comparison for cold_start_ms: the action with every cloud's SDK loaded before it starts,
// as a bundle without lazily loaded chunks would do. Built by bench/run.ts into bench/.cache.
import '../src/clouds/aws.js';
import '../src/clouds/gcp.js';
import '../src/clouds/kubernetes.js';
import '../src/action/index.js';
