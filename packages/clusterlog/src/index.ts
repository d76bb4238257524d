// The pure cluster-log core (CLUSTERLOG-SPEC.md). No I/O, clocks or timers live here:
// everything the state machine needs from the world is passed in, so replicas fed the
// same operations produce the same state and replies.
export {};
