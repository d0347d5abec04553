// The comparison for cold_start_ms: the action with every cloud's SDK loaded before it starts,
// as a bundle without lazily loaded chunks would do. Built by bench/run.ts into bench/.cache.
import '../src/clouds/aws/provider.js';
import '../src/clouds/azure/provider.js';
import '../src/clouds/gcp/provider.js';
import '../src/clouds/kubernetes/provider.js';
import '../src/action/index.js';
