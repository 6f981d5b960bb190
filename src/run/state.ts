// The run state's public surface, kept for code that imports it from here (other branches);
// new code imports the module it needs from src/run/state/: model (types), ids (run ids, params
// hash), steps (the step tree), resume-policy (what a resume may pick up and re-runs), schema
// (the check of a parsed file), state-file (state.yml text and its head), journal (step
// transitions between rewrites), writer (ordered, batched writes of one run), atomic-write,
// store (RunStore).
export * from './state/model.js';
export * from './state/ids.js';
export * from './state/steps.js';
export * from './state/resume-policy.js';
export { writeFileAtomic } from './state/atomic-write.js';
export { readStateHead, type StateHead } from './state/state-file.js';
export { parseJournal, replay, type JournalRecord } from './state/journal.js';
export { RunStore } from './state/store.js';
