// bottleneck/light is the same limiter without clustering, as @octokit/plugin-throttling uses it;
// it ships no declaration of its own.
declare module 'bottleneck/light.js' {
  import Bottleneck from 'bottleneck';
  export default Bottleneck;
}
