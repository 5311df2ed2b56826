/** The fake DataplaneControl now lives beside its interface (src/dataplane/fake-control.ts); kept here for existing imports. */
export { FakeDataplane } from '../../src/dataplane/fake-control.js';
