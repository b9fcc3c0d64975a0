import { installFetchCheck } from './openapi';

// Integration and e2e tests: every answer fetched from a tracked API is checked against /openapi.json.
installFetchCheck();
