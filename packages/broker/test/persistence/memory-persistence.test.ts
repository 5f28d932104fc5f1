import { createMemoryPersistence } from '@fleetward/broker';
import { describePersistence } from './persistence-conformance.js';

describePersistence('in-memory', () => Promise.resolve(createMemoryPersistence()));
