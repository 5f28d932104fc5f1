// The broker engine's public interface (createBroker and its types) is exported from here.
export {};
