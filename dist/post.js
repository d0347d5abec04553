// The post step: the same bundle as main, told that it is post (see src/action/index.ts).
'use strict';
globalThis.cmlRunnerActionStep = 'post';
require('./index.js');
